//===- Npy.cpp - NumPy .npy reader and writer -----------------------------===//
//
// The .npy layout: 6-byte magic "\x93NUMPY", major and minor version bytes,
// a little-endian header length (u16 in version 1, u32 in versions 2 and 3),
// then the header -- a Python dict literal with exactly the keys 'descr',
// 'fortran_order' and 'shape' -- and finally the raw element bytes.
//
//===----------------------------------------------------------------------===//

#include "runtime/Npy.h"
#include "runtime/FileIO.h"
#include "runtime/Limits.h"

#include <cstring>

using namespace loom;

static const char kMagic[] = "\x93NUMPY";
static const size_t kMagicSize = 6;
// numpy aligns the data section to this many bytes.
static const size_t kArrayAlign = 64;
// numpy >= 1.23 leaves room in the header for the first dimension to grow
// to this many digits, so arrays can be appended to in place; we pad the
// same way so our files are byte-identical to numpy.save's.
static const size_t kGrowthAxisMaxDigits = 21;

static std::string offsetString(size_t offset) {
  return "at offset " + std::to_string(offset);
}

namespace {

/// One-pass parser of the header dict. Offsets in its messages are file
/// offsets (base + position in the header text).
class HeaderParser {
public:
  HeaderParser(const uint8_t *text, size_t size, size_t base)
      : text(text), size(size), base(base) {}

  Status parse();

  std::string descr;
  size_t descrOffset = 0;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
  size_t shapeOffset = 0;

private:
  const uint8_t *text;
  size_t size;
  size_t base;
  size_t pos = 0;

  Error errorAt(size_t at, const std::string &what) const {
    return Error{"header: " + what + " " + offsetString(base + at)};
  }
  Error errorHere(const std::string &what) const { return errorAt(pos, what); }

  bool atEnd() const { return pos >= size; }
  char peek() const { return atEnd() ? '\0' : static_cast<char>(text[pos]); }
  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++pos;
  }
  bool consume(char c) {
    if (atEnd() || peek() != c)
      return false;
    ++pos;
    return true;
  }
  /// What is at the current position, for "expected X, found Y" messages.
  std::string found() const {
    if (atEnd())
      return "end of header";
    char c = peek();
    if (c >= 0x20 && c < 0x7f)
      return std::string("'") + c + "'";
    return "byte " + std::to_string(static_cast<unsigned>(text[pos]));
  }

  Status parseString(std::string &out);
  Status parseBool(bool &out);
  Status parseShape();
};

} // namespace

Status HeaderParser::parseString(std::string &out) {
  char quote = peek();
  if (quote != '\'' && quote != '"')
    return errorHere("expected a string, found " + found());
  size_t start = pos++;
  out.clear();
  while (!atEnd() && peek() != quote) {
    // Valid descrs and keys never need escapes; refusing them keeps the
    // parser small without rejecting anything numpy writes.
    if (peek() == '\\')
      return errorHere("escape sequences are not supported in strings");
    if (peek() == '\n')
      return errorHere("unterminated string");
    out += peek();
    ++pos;
  }
  if (atEnd())
    return errorAt(start, "unterminated string starting");
  ++pos;
  return Status::success();
}

static bool isIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_';
}

Status HeaderParser::parseBool(bool &out) {
  size_t start = pos;
  std::string word;
  while (!atEnd() && isIdentifierChar(peek()))
    word += text[pos++];
  if (word == "True")
    out = true;
  else if (word == "False")
    out = false;
  else {
    pos = start;
    return errorHere("expected True or False, found " +
                     (word.empty() ? found() : "'" + word + "'"));
  }
  return Status::success();
}

Status HeaderParser::parseShape() {
  shapeOffset = pos;
  if (!consume('('))
    return errorHere("'shape' must be a tuple, found " + found());
  shape.clear();
  bool trailingComma = false;
  skipSpace();
  while (!consume(')')) {
    size_t start = pos;
    bool negative = consume('-');
    if (!(peek() >= '0' && peek() <= '9'))
      return errorHere("expected a dimension or ')' in 'shape', found " +
                       found());
    int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (__builtin_mul_overflow(value, int64_t(10), &value) ||
          __builtin_add_overflow(value, int64_t(peek() - '0'), &value))
        return errorAt(start, "dimension in 'shape' does not fit in int64");
      ++pos;
    }
    // Python 2 era files spell dimensions as long literals: (3L, 4L).
    if (peek() == 'L' || peek() == 'l')
      ++pos;
    if (negative)
      return errorAt(start, "negative dimension -" + std::to_string(value) +
                                " in 'shape'");
    shape.push_back(value);
    skipSpace();
    trailingComma = consume(',');
    skipSpace();
    if (!trailingComma && peek() != ')')
      return errorHere("expected ',' or ')' in 'shape', found " + found());
  }
  // "(3)" is a parenthesized integer in Python, not a tuple.
  if (shape.size() == 1 && !trailingComma)
    return errorAt(shapeOffset, "'shape' must be a tuple, found (" +
                                    std::to_string(shape[0]) + ")");
  return Status::success();
}

Status HeaderParser::parse() {
  skipSpace();
  if (!consume('{'))
    return errorHere("expected '{' to start the header dict, found " + found());
  bool seenDescr = false, seenFortran = false, seenShape = false;
  while (true) {
    skipSpace();
    if (consume('}'))
      break;
    size_t keyOffset = pos;
    std::string key;
    if (Status s = parseString(key); !s)
      return s;
    skipSpace();
    if (!consume(':'))
      return errorHere("expected ':' after key '" + key + "', found " +
                       found());
    skipSpace();
    bool *seen;
    Status s;
    if (key == "descr") {
      seen = &seenDescr;
      descrOffset = pos;
      if (peek() == '[')
        return errorHere("structured dtypes are not supported");
      s = parseString(descr);
    } else if (key == "fortran_order") {
      seen = &seenFortran;
      s = parseBool(fortranOrder);
    } else if (key == "shape") {
      seen = &seenShape;
      s = parseShape();
    } else {
      return errorAt(keyOffset, "unexpected key '" + key + "'");
    }
    if (!s)
      return s;
    if (*seen)
      return errorAt(keyOffset, "duplicate key '" + key + "'");
    *seen = true;
    skipSpace();
    if (consume(','))
      continue;
    if (consume('}'))
      break;
    return errorHere("expected ',' or '}' in the header dict, found " +
                     found());
  }
  skipSpace();
  if (!atEnd())
    return errorHere("unexpected " + found() + " after the header dict");
  const char *missing = !seenDescr     ? "descr"
                        : !seenFortran ? "fortran_order"
                        : !seenShape   ? "shape"
                                       : nullptr;
  if (missing)
    return errorAt(0, std::string("missing key '") + missing +
                          "' in the header dict");
  return Status::success();
}

namespace {
struct DescrInfo {
  const char *code; // kind and size, without the byte-order mark
  DType dtype;
};
} // namespace

static const DescrInfo kDescrs[] = {
    {"f4", DType::F32}, {"f8", DType::F64}, {"f2", DType::F16},
    {"i8", DType::I64}, {"i4", DType::I32}, {"i2", DType::I16},
    {"i1", DType::I8},  {"u1", DType::U8},  {"b1", DType::Bool},
};

/// Maps a descr to a dtype. '<' and '=' (native, and loom hosts are
/// little-endian) are accepted for every type; '|' (not applicable) and '>'
/// only for one-byte types, where byte order means nothing.
static ErrorOr<DType> parseDescr(const std::string &descr) {
  if (descr.size() >= 2) {
    char order = descr[0];
    std::string code = descr.substr(1);
    for (const DescrInfo &info : kDescrs) {
      if (code != info.code)
        continue;
      bool oneByte = dtypeSize(info.dtype) == 1;
      if (order == '<' || order == '=' ||
          (oneByte && (order == '|' || order == '>')))
        return info.dtype;
      if (order == '>')
        return Error{"big-endian dtype '" + descr + "' is not supported; " +
                     "convert it with arr.astype('<" + code + "')"};
      break;
    }
  }
  return Error{"unsupported dtype '" + descr +
               "' (supported: <f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1, |b1)"};
}

static ErrorOr<Tensor> parseNpyImpl(const uint8_t *data, size_t size) {
  // A file shorter than the magic but matching it so far is truncated, not
  // foreign. (memcmp may not see a null pointer even for zero bytes.)
  size_t magicBytes = size < kMagicSize ? size : kMagicSize;
  if (magicBytes && std::memcmp(data, kMagic, magicBytes) != 0)
    return Error{"bad magic " + offsetString(0) +
                 ": not a .npy file (expected \\x93NUMPY)"};
  if (size < 8)
    return Error{"truncated header: file has " + std::to_string(size) +
                 " bytes, too short for the magic and version"};
  unsigned major = data[6], minor = data[7];
  if (major < 1 || major > 3 || minor != 0)
    return Error{"unsupported format version " + std::to_string(major) + "." +
                 std::to_string(minor) + " " + offsetString(6) +
                 " (supported: 1.0, 2.0, 3.0)"};
  size_t preamble = major == 1 ? 10 : 12;
  if (size < preamble)
    return Error{"truncated header: file has " + std::to_string(size) +
                 " bytes, too short for the version " + std::to_string(major) +
                 " preamble of " + std::to_string(preamble) + " bytes"};
  uint64_t headerLen = data[8] | (data[9] << 8);
  if (major != 1)
    headerLen |= static_cast<uint64_t>(data[10]) << 16 |
                 static_cast<uint64_t>(data[11]) << 24;
  if (headerLen > size - preamble)
    return Error{"header length " + std::to_string(headerLen) + " " +
                 offsetString(8) + " runs past the end of the file (header " +
                 "would end at byte " + std::to_string(preamble + headerLen) +
                 ", file has " + std::to_string(size) + ")"};
  if (headerLen > kMaxNpyHeaderBytes)
    return Error{"header length " + std::to_string(headerLen) + " " +
                 offsetString(8) + " is over the limit of " +
                 std::to_string(kMaxNpyHeaderBytes) +
                 " bytes (NumPy's own max_header_size)"};

  HeaderParser header(data + preamble, headerLen, preamble);
  if (Status s = header.parse(); !s)
    return Error{s.error()};
  ErrorOr<DType> dtype = parseDescr(header.descr);
  if (!dtype)
    return Error{dtype.error() + " " +
                 offsetString(preamble + header.descrOffset)};
  if (header.fortranOrder)
    return Error{"fortran_order: True is not supported (save a C-ordered "
                 "array, e.g. np.ascontiguousarray(arr)) " +
                 offsetString(preamble)};

  int64_t numElements, numBytes;
  if (!checkedNumElements(header.shape, dtypeSize(*dtype), numElements,
                          numBytes))
    return Error{"shape " + shapeString(header.shape) + " of " +
                 dtypeName(*dtype) +
                 " is too large: " + "its byte size overflows int64 " +
                 offsetString(preamble + header.shapeOffset)};
  size_t dataOffset = preamble + headerLen;
  uint64_t available = size - dataOffset;
  uint64_t expected = static_cast<uint64_t>(numBytes);
  if (available < expected)
    return Error{"truncated data: expected " + std::to_string(expected) +
                 " bytes " + offsetString(dataOffset) + " for shape " +
                 shapeString(header.shape) + " of " + dtypeName(*dtype) +
                 ", file has " + std::to_string(available)};
  if (available > expected)
    return Error{"trailing data: expected " + std::to_string(expected) +
                 " bytes " + offsetString(dataOffset) + " for shape " +
                 shapeString(header.shape) + " of " + dtypeName(*dtype) +
                 ", file has " + std::to_string(available) + " (" +
                 std::to_string(available - expected) + " extra bytes " +
                 offsetString(dataOffset + expected) + ")"};

  Tensor t;
  t.dtype = *dtype;
  t.shape = std::move(header.shape);
  t.data.assign(data + dataOffset, data + size);
  return t;
}

ErrorOr<Tensor> loom::parseNpy(const uint8_t *data, size_t size) {
  ErrorOr<Tensor> result = parseNpyImpl(data, size);
  if (!result)
    return Error{"npy: " + result.error()};
  return result;
}

ErrorOr<Tensor> loom::readNpy(const std::string &path) {
  ErrorOr<std::vector<uint8_t>> bytes = readFileBytes(path);
  if (!bytes)
    return Error{bytes.error()};
  ErrorOr<Tensor> result = parseNpyImpl(bytes->data(), bytes->size());
  if (!result)
    return Error{path + ": " + result.error()};
  return result;
}

static const char *descrFor(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "<f4";
  case DType::F64:
    return "<f8";
  case DType::F16:
    return "<f2";
  case DType::I64:
    return "<i8";
  case DType::I32:
    return "<i4";
  case DType::I16:
    return "<i2";
  case DType::I8:
    return "|i1";
  case DType::U8:
    return "|u1";
  case DType::Bool:
    return "|b1";
  case DType::BF16:
    return nullptr;
  }
  return nullptr;
}

/// The magic, version, header length and header of a .npy file for tensor;
/// the element bytes follow. Kept apart from the data so that writeNpy need
/// not copy a large tensor.
static ErrorOr<std::vector<uint8_t>> buildPreamble(const Tensor &tensor) {
  const char *descr = descrFor(tensor.dtype);
  if (!descr)
    return Error{"cannot write a bf16 tensor: NumPy has no bfloat16 "
                 "dtype (convert it to f32 first)"};
  int64_t numElements, numBytes;
  if (!checkedNumElements(tensor.shape, dtypeSize(tensor.dtype), numElements,
                          numBytes) ||
      static_cast<uint64_t>(numBytes) != tensor.data.size())
    return Error{"cannot write tensor of shape " + tensor.shapeString() +
                 " and dtype " + dtypeName(tensor.dtype) + ": it holds " +
                 std::to_string(tensor.data.size()) +
                 " bytes, which does not match its shape"};

  // Same text as numpy.save, so the files are byte-identical.
  std::string shape = "(";
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    if (i)
      shape += ", ";
    shape += std::to_string(tensor.shape[i]);
  }
  if (tensor.shape.size() == 1)
    shape += ",";
  shape += ")";
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  if (!tensor.shape.empty())
    header.append(kGrowthAxisMaxDigits - std::to_string(tensor.shape[0]).size(),
                  ' ');

  // Pad with spaces and a final newline so the data starts on a multiple of
  // kArrayAlign; switch to version 2 if the header outgrows a u16 length.
  auto padded = [&](size_t preamble) {
    size_t unpadded = preamble + header.size() + 1;
    return header.size() + 1 + (kArrayAlign - unpadded % kArrayAlign);
  };
  unsigned major = 1;
  size_t preamble = 10;
  size_t headerLen = padded(preamble);
  if (headerLen > 0xffff) {
    major = 2;
    preamble = 12;
    headerLen = padded(preamble);
  }
  if (headerLen > 0xffffffffu)
    return Error{"header too long"};
  header.append(headerLen - header.size() - 1, ' ');
  header += '\n';

  std::vector<uint8_t> out;
  out.reserve(preamble + headerLen);
  out.insert(out.end(), kMagic, kMagic + kMagicSize);
  out.push_back(static_cast<uint8_t>(major));
  out.push_back(0);
  for (size_t i = 0; i < preamble - 8; ++i)
    out.push_back(static_cast<uint8_t>(headerLen >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

ErrorOr<std::vector<uint8_t>> loom::serializeNpy(const Tensor &tensor) {
  ErrorOr<std::vector<uint8_t>> out = buildPreamble(tensor);
  if (!out)
    return Error{"npy: " + out.error()};
  out->insert(out->end(), tensor.data.begin(), tensor.data.end());
  return out;
}

Status loom::writeNpy(const std::string &path, const Tensor &tensor) {
  ErrorOr<std::vector<uint8_t>> preamble = buildPreamble(tensor);
  if (!preamble)
    return Error{path + ": " + preamble.error()};
  return writeFileAtomic(path, {{preamble->data(), preamble->size()},
                                {tensor.data.data(), tensor.data.size()}});
}
