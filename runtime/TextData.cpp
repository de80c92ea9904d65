//===- TextData.cpp - Text corpora, tokenizers and LM batching ------------===//
//
// The tokenizers walk the text once, handing each token (as a view into the
// text) to a callback, so that building a vocabulary or encoding a large
// corpus never materializes a string per character.
//
//===----------------------------------------------------------------------===//

#include "runtime/TextData.h"
#include "runtime/FileIO.h"
#include "runtime/Json.h"
#include "runtime/Npy.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <string_view>

using namespace loom;

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

/// The length of the well-formed UTF-8 sequence starting at data[pos], or 0
/// if the bytes there are not one (Unicode Table 3-7).
static size_t sequenceLength(const char *data, size_t size, size_t pos) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(data[i]); };
  unsigned char lead = byte(pos);
  if (lead < 0x80)
    return 1;
  size_t length;
  // The range of the second byte; later ones are always 80..BF.
  unsigned char low = 0x80, high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead == 0xe0) {
    length = 3, low = 0xa0; // below: overlong
  } else if (lead == 0xed) {
    length = 3, high = 0x9f; // above: surrogates
  } else if (lead >= 0xe1 && lead <= 0xef) {
    length = 3;
  } else if (lead == 0xf0) {
    length = 4, low = 0x90; // below: overlong
  } else if (lead >= 0xf1 && lead <= 0xf3) {
    length = 4;
  } else if (lead == 0xf4) {
    length = 4, high = 0x8f; // above: beyond U+10FFFF
  } else {
    return 0; // a continuation byte, C0, C1 or F5..FF
  }
  if (size - pos < length)
    return 0;
  if (byte(pos + 1) < low || byte(pos + 1) > high)
    return 0;
  for (size_t i = 2; i < length; ++i)
    if ((byte(pos + i) & 0xc0) != 0x80)
      return 0;
  return length;
}

/// The code point of the well-formed sequence of the given length at p.
static uint32_t decodeSequence(const char *p, size_t length) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(p[i]); };
  if (length == 1)
    return byte(0);
  static const unsigned char leadMask[] = {0, 0, 0x1f, 0x0f, 0x07};
  uint32_t cp = byte(0) & leadMask[length];
  for (size_t i = 1; i < length; ++i)
    cp = (cp << 6) | (byte(i) & 0x3f);
  return cp;
}

/// What Python's str.split() splits on (str.isspace()).
static bool isPythonWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) ||
         cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

std::optional<size_t> loom::findInvalidUtf8(const char *data, size_t size) {
  size_t pos = 0;
  while (pos < size) {
    size_t length = sequenceLength(data, size, pos);
    if (length == 0)
      return pos;
    pos += length;
  }
  return std::nullopt;
}

ErrorOr<std::string> loom::readTextCorpus(const std::string &path) {
  ErrorOr<std::vector<uint8_t>> bytes = readFileBytes(path);
  if (!bytes)
    return Error{bytes.error()};
  if (bytes->empty())
    return Error{path + ": the corpus is empty"};
  std::string text(bytes->begin(), bytes->end());
  if (std::optional<size_t> bad = findInvalidUtf8(text))
    return Error{path + ": not valid UTF-8 at byte offset " +
                 std::to_string(*bad)};
  return text;
}

std::string loom::escapeForMessage(const std::string &text) {
  std::string out;
  char buffer[16];
  size_t pos = 0;
  while (pos < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[pos]);
    size_t length = sequenceLength(text.data(), text.size(), pos);
    if (length == 0) {
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
      ++pos;
      continue;
    }
    if (length == 1) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20 || c == 0x7f) {
        std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
        out += buffer;
      } else {
        out += static_cast<char>(c);
      }
      ++pos;
      continue;
    }
    uint32_t cp = decodeSequence(text.data() + pos, length);
    if ((cp >= 0x80 && cp <= 0x9f) || isPythonWhitespace(cp) || cp == 0xfeff) {
      std::snprintf(buffer, sizeof buffer, "\\u%04x",
                    static_cast<unsigned>(cp));
      out += buffer;
    } else {
      out.append(text, pos, length);
    }
    pos += length;
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Tokenizers
//===----------------------------------------------------------------------===//

bool loom::isTokenizerKind(const std::string &kind) {
  return kind == "char" || kind == "word";
}

Status loom::checkTokenizerKind(const std::string &kind) {
  if (isTokenizerKind(kind))
    return Status::success();
  return Error{"unknown tokenizer '" + escapeForMessage(kind) +
               "' (expected 'char' or 'word')"};
}

/// Calls fn(std::string_view token, size_t offset) for every character (as
/// its UTF-8 bytes) of text; each byte of an ill-formed sequence is one
/// character.
template <typename Fn>
static void forEachCharToken(const std::string &text, Fn &&fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length = sequenceLength(text.data(), text.size(), pos);
    if (length == 0)
      length = 1;
    fn(std::string_view(text.data() + pos, length), pos);
    pos += length;
  }
}

/// Calls fn(std::string_view token, size_t offset) for every token of the
/// word tokenizer (see TextData.h).
template <typename Fn>
static void forEachWordToken(const std::string &text, Fn &&fn) {
  const std::string_view eos(kEndOfLineToken);
  const size_t size = text.size();
  size_t pos = 0;
  // One iteration per line; a line is never empty here (pos < size).
  while (pos < size) {
    size_t wordStart = 0;
    bool inWord = false;
    size_t lineEnd = size;
    while (pos < size) {
      char c = text[pos];
      if (c == '\n' || c == '\r') {
        lineEnd = pos;
        pos += (c == '\r' && pos + 1 < size && text[pos + 1] == '\n') ? 2 : 1;
        break;
      }
      size_t length = sequenceLength(text.data(), size, pos);
      bool space =
          length != 0 &&
          isPythonWhitespace(decodeSequence(text.data() + pos, length));
      if (length == 0)
        length = 1;
      if (space && inWord) {
        fn(std::string_view(text.data() + wordStart, pos - wordStart),
           wordStart);
        inWord = false;
      } else if (!space && !inWord) {
        wordStart = pos;
        inWord = true;
      }
      pos += length;
    }
    if (inWord)
      fn(std::string_view(text.data() + wordStart, lineEnd - wordStart),
         wordStart);
    fn(eos, lineEnd);
  }
}

template <typename Fn>
static void forEachToken(const std::string &kind, const std::string &text,
                         Fn &&fn) {
  if (kind == "char")
    forEachCharToken(text, fn);
  else if (kind == "word")
    forEachWordToken(text, fn);
}

std::vector<TextToken> loom::tokenize(const std::string &kind,
                                      const std::string &text) {
  std::vector<TextToken> tokens;
  forEachToken(kind, text, [&](std::string_view token, size_t offset) {
    tokens.push_back(TextToken{std::string(token), offset});
  });
  return tokens;
}

//===----------------------------------------------------------------------===//
// Vocabulary
//===----------------------------------------------------------------------===//

std::optional<int64_t> Vocabulary::lookup(const std::string &token) const {
  auto it = index.find(token);
  if (it == index.end())
    return std::nullopt;
  return it->second;
}

Vocabulary Vocabulary::build(const std::string &kind, const std::string &text) {
  Vocabulary vocab;
  vocab.kind = kind;
  std::string key;
  forEachToken(kind, text, [&](std::string_view token, size_t) {
    key.assign(token.data(), token.size());
    auto inserted = vocab.index.emplace(key, vocab.size());
    if (inserted.second)
      vocab.tokens.push_back(key);
  });
  return vocab;
}

ErrorOr<std::vector<int64_t>>
Vocabulary::encode(const std::string &text, const std::string &where) const {
  if (std::optional<size_t> bad = findInvalidUtf8(text))
    return Error{where + ": not valid UTF-8 at byte offset " +
                 std::to_string(*bad)};
  std::vector<int64_t> ids;
  std::string key;
  std::optional<Error> error;
  forEachToken(kind, text, [&](std::string_view token, size_t offset) {
    if (error)
      return;
    key.assign(token.data(), token.size());
    auto it = index.find(key);
    if (it == index.end()) {
      error = Error{where + ": token \"" + escapeForMessage(key) +
                    "\" (at byte offset " + std::to_string(offset) +
                    ") is not in the vocabulary (the vocabulary has " +
                    std::to_string(tokens.size()) + " tokens)"};
      return;
    }
    ids.push_back(it->second);
  });
  if (error)
    return std::move(*error);
  return ids;
}

std::string Vocabulary::toJson() const {
  std::string out = "{\"kind\": ";
  json::appendQuoted(out, kind);
  out += ", \"tokens\": [";
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i)
      out += ", ";
    json::appendQuoted(out, tokens[i]);
  }
  out += "]}\n";
  return out;
}

/// Whether token is exactly one code point.
static bool isOneCharacter(const std::string &token) {
  return !token.empty() &&
         sequenceLength(token.data(), token.size(), 0) == token.size();
}

static bool hasWhitespace(const std::string &token) {
  bool found = false;
  forEachCharToken(token, [&](std::string_view c, size_t) {
    size_t length = sequenceLength(c.data(), c.size(), 0);
    if (length && isPythonWhitespace(decodeSequence(c.data(), length)))
      found = true;
  });
  return found;
}

ErrorOr<Vocabulary> Vocabulary::fromJson(const std::string &text,
                                         const std::string &path) {
  auto fail = [&](const std::string &what, size_t offset) {
    return Error{path + ": " + what + " at offset " + std::to_string(offset)};
  };
  ErrorOr<json::Value> parsed = json::parse(text.data(), text.size());
  if (!parsed)
    return Error{path + ": " + parsed.error()};
  const json::Value &root = *parsed;

  Vocabulary vocab;
  const json::Value *tokenList = nullptr;
  if (root.isArray()) {
    // The legacy form: examples/charlm's vocab.json.
    vocab.kind = "char";
    tokenList = &root;
  } else if (root.isObject()) {
    const json::Value *kindValue = nullptr;
    for (const json::Member &m : root.members) {
      const json::Value **slot = m.key == "kind"     ? &kindValue
                                 : m.key == "tokens" ? &tokenList
                                                     : nullptr;
      if (!slot)
        return fail("unknown key \"" + escapeForMessage(m.key) +
                        "\" (expected \"kind\" and \"tokens\")",
                    m.keyOffset);
      if (*slot)
        return fail("duplicate key \"" + escapeForMessage(m.key) + "\"",
                    m.keyOffset);
      *slot = &m.value;
    }
    if (!kindValue)
      return fail("missing key \"kind\" in the vocabulary object", root.offset);
    if (!tokenList)
      return fail("missing key \"tokens\" in the vocabulary object",
                  root.offset);
    if (!kindValue->isString())
      return fail("\"kind\" must be a string", kindValue->offset);
    if (!isTokenizerKind(kindValue->string))
      return fail("unknown tokenizer kind \"" +
                      escapeForMessage(kindValue->string) +
                      "\" (expected \"char\" or \"word\")",
                  kindValue->offset);
    vocab.kind = kindValue->string;
    if (!tokenList->isArray())
      return fail("\"tokens\" must be an array of strings", tokenList->offset);
  } else {
    return fail("expected a vocabulary object {\"kind\": ..., \"tokens\": "
                "[...]} or an array of strings",
                root.offset);
  }

  if (tokenList->elements.empty())
    return fail("the vocabulary has no tokens", tokenList->offset);
  for (size_t i = 0; i < tokenList->elements.size(); ++i) {
    const json::Value &element = tokenList->elements[i];
    std::string which = "token " + std::to_string(i);
    if (!element.isString())
      return fail(which + " is not a string", element.offset);
    const std::string &token = element.string;
    if (token.empty())
      return fail(which + " is empty", element.offset);
    which += " \"" + escapeForMessage(token) + "\"";
    if (vocab.kind == "char" && !isOneCharacter(token))
      return fail(which + " is not a single character, as tokens of a char "
                          "vocabulary must be",
                  element.offset);
    if (vocab.kind == "word" && hasWhitespace(token))
      return fail(which + " contains whitespace, which the word tokenizer "
                          "never produces",
                  element.offset);
    auto inserted = vocab.index.emplace(token, static_cast<int64_t>(i));
    if (!inserted.second)
      return fail(which + " repeats token " +
                      std::to_string(inserted.first->second),
                  element.offset);
    vocab.tokens.push_back(token);
  }
  return vocab;
}

Status Vocabulary::save(const std::string &path) const {
  std::string text = toJson();
  return writeFileAtomic(
      path, {{reinterpret_cast<const uint8_t *>(text.data()), text.size()}});
}

ErrorOr<Vocabulary> Vocabulary::load(const std::string &path) {
  ErrorOr<std::vector<uint8_t>> bytes = readFileBytes(path);
  if (!bytes)
    return Error{bytes.error()};
  return fromJson(std::string(bytes->begin(), bytes->end()), path);
}

//===----------------------------------------------------------------------===//
// Token-id streams
//===----------------------------------------------------------------------===//

ErrorOr<std::vector<int64_t>> loom::readTokenStream(const std::string &path) {
  ErrorOr<Tensor> tensor = readNpy(path);
  if (!tensor)
    return Error{tensor.error()};
  if (tensor->dtype != DType::I64 && tensor->dtype != DType::I32)
    return Error{path + ": token ids must be int64 or int32, found " +
                 dtypeName(tensor->dtype) + " of shape " +
                 tensor->shapeString()};
  if (tensor->shape.size() != 1)
    return Error{path + ": token ids must be a 1-D array, found shape " +
                 tensor->shapeString()};
  if (tensor->shape[0] == 0)
    return Error{path + ": the token array is empty"};
  ErrorOr<std::vector<int64_t>> ids = toI64Values(*tensor);
  if (!ids)
    return Error{path + ": " + ids.error()};
  return ids;
}

Status loom::checkTokenIds(const std::vector<int64_t> &ids, int64_t vocabSize,
                           const std::string &where) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocabSize)
      return Error{where + ": token id " + std::to_string(ids[i]) +
                   " at index " + std::to_string(i) +
                   " is outside the vocabulary [0, " +
                   std::to_string(vocabSize) + ")"};
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Language-model batches
//===----------------------------------------------------------------------===//

ErrorOr<Batchified> loom::batchify(const std::vector<int64_t> &stream,
                                   int64_t batch, int64_t bptt,
                                   const std::string &what) {
  if (batch < 1)
    return Error{what + ": the batch size must be at least 1, got " +
                 std::to_string(batch)};
  if (bptt < 1)
    return Error{what + ": the BPTT length must be at least 1, got " +
                 std::to_string(bptt)};
  int64_t size = static_cast<int64_t>(stream.size());
  int64_t rows = size / batch;
  if (rows < 2) {
    // 2 * batch may overflow; say so rather than print a wrapped number.
    std::string need =
        batch <= INT64_MAX / 2 ? std::to_string(2 * batch) : "more than 2^63";
    return Error{what + " has " + std::to_string(size) +
                 " tokens, too few for one batch of " + std::to_string(batch) +
                 " sequences (need at least 2\u00b7" + std::to_string(batch) +
                 " = " + need + ")"};
  }
  Batchified out;
  out.rows = rows;
  out.batch = batch;
  out.data.resize(static_cast<size_t>(rows * batch));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      out.data[r * batch + b] = stream[b * rows + r];
  return out;
}

int64_t loom::numChunks(const Batchified &data, int64_t bptt) {
  if (data.rows < 2 || bptt < 1)
    return 0;
  return (data.rows - 1 + bptt - 1) / bptt;
}

void loom::getBatch(const Batchified &data, int64_t chunk, int64_t bptt,
                    Tensor &tokens, Tensor &targets) {
  assert(chunk >= 0 && chunk < numChunks(data, bptt) && "chunk out of range");
  int64_t start = chunk * bptt;
  int64_t seqLen = std::min(bptt, data.rows - 1 - start);
  tokens = Tensor::zeros(DType::I64, {seqLen, data.batch});
  targets = Tensor::zeros(DType::I64, {seqLen, data.batch});
  size_t count = static_cast<size_t>(seqLen * data.batch);
  const int64_t *source = data.data.data() + start * data.batch;
  std::copy(source, source + count, tokens.i64Data());
  std::copy(source + data.batch, source + data.batch + count,
            targets.i64Data());
}
