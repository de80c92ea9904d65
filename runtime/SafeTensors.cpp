//===- SafeTensors.cpp - safetensors reader and writer --------------------===//
//
// Follows the reference implementation (huggingface/safetensors): header
// length as u64 LE, compact JSON header padded with spaces to 8 bytes,
// offsets relative to the first byte after the header.
//
//===----------------------------------------------------------------------===//

#include "runtime/SafeTensors.h"
#include "runtime/FileIO.h"
#include "runtime/Json.h"
#include "runtime/Limits.h"

#include <algorithm>
#include <set>

using namespace loom;

static const char kMetadataKey[] = "__metadata__";

const Tensor *SafeTensorsFile::find(const std::string &name) const {
  for (const auto &[tensorName, tensor] : tensors)
    if (tensorName == name)
      return &tensor;
  return nullptr;
}

namespace {
struct DTypeSpelling {
  const char *name;
  DType dtype;
  /// Position in the reference implementation's Dtype enum, which orders
  /// tensors in written files (larger first).
  int rank;
};
} // namespace

static const DTypeSpelling kDTypes[] = {
    {"BOOL", DType::Bool, 0}, {"U8", DType::U8, 1},    {"I8", DType::I8, 2},
    {"I16", DType::I16, 5},   {"F16", DType::F16, 7},  {"BF16", DType::BF16, 8},
    {"I32", DType::I32, 9},   {"F32", DType::F32, 11}, {"F64", DType::F64, 12},
    {"I64", DType::I64, 13},
};

const char *loom::safetensorsDTypeName(DType dtype) {
  for (const DTypeSpelling &d : kDTypes)
    if (d.dtype == dtype)
      return d.name;
  return "?";
}

std::optional<DType> loom::parseSafeTensorsDType(const std::string &name) {
  for (const DTypeSpelling &d : kDTypes)
    if (name == d.name)
      return d.dtype;
  return std::nullopt;
}

static int dtypeRank(DType dtype) {
  for (const DTypeSpelling &d : kDTypes)
    if (d.dtype == dtype)
      return d.rank;
  return 0;
}

static std::string at(size_t offset) {
  return " (at offset " + std::to_string(offset) + ")";
}

namespace {
/// A validated header entry.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};
} // namespace

/// Checks one tensor entry of the header against the data section size.
static ErrorOr<Entry> checkEntry(const std::string &name,
                                 const json::Value &value, uint64_t dataSize,
                                 size_t dataStart) {
  std::string prefix = "tensor '" + name + "': ";
  if (!value.isObject())
    return Error{prefix + "entry must be a JSON object" + at(value.offset)};
  const json::Value *dtypeValue = nullptr, *shapeValue = nullptr,
                    *offsetsValue = nullptr;
  for (const json::Member &m : value.members) {
    const json::Value **slot = m.key == "dtype"          ? &dtypeValue
                               : m.key == "shape"        ? &shapeValue
                               : m.key == "data_offsets" ? &offsetsValue
                                                         : nullptr;
    // Other keys are ignored, as the reference implementation does.
    if (!slot)
      continue;
    if (*slot)
      return Error{prefix + "duplicate key '" + m.key + "'" + at(m.keyOffset)};
    *slot = &m.value;
  }
  for (auto [field, name] :
       {std::pair{dtypeValue, "dtype"}, std::pair{shapeValue, "shape"},
        std::pair{offsetsValue, "data_offsets"}})
    if (!field)
      return Error{prefix + "missing '" + name + "'" + at(value.offset)};

  Entry e;
  e.name = name;
  if (!dtypeValue->isString())
    return Error{prefix + "'dtype' must be a string" + at(dtypeValue->offset)};
  std::optional<DType> dtype = parseSafeTensorsDType(dtypeValue->string);
  if (!dtype)
    return Error{prefix + "unsupported dtype '" + dtypeValue->string + "'" +
                 " (supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8," +
                 " BOOL)" + at(dtypeValue->offset)};
  e.dtype = *dtype;

  if (!shapeValue->isArray())
    return Error{prefix + "'shape' must be an array of integers" +
                 at(shapeValue->offset)};
  for (const json::Value &dim : shapeValue->elements) {
    if (!dim.isInteger())
      return Error{prefix + "'shape' must be an array of integers" +
                   at(dim.offset)};
    if (dim.integer < 0)
      return Error{prefix + "negative dimension " +
                   std::to_string(dim.integer) + " in 'shape'" +
                   at(dim.offset)};
    e.shape.push_back(dim.integer);
  }

  if (!offsetsValue->isArray() || offsetsValue->elements.size() != 2 ||
      !offsetsValue->elements[0].isInteger() ||
      !offsetsValue->elements[1].isInteger() ||
      offsetsValue->elements[0].integer < 0 ||
      offsetsValue->elements[1].integer < 0)
    return Error{prefix + "'data_offsets' must be an array of two " +
                 "non-negative integers" + at(offsetsValue->offset)};
  e.begin = static_cast<uint64_t>(offsetsValue->elements[0].integer);
  e.end = static_cast<uint64_t>(offsetsValue->elements[1].integer);
  std::string offsets = "data_offsets [" + std::to_string(e.begin) + ", " +
                        std::to_string(e.end) + "]";
  if (e.begin > e.end)
    return Error{prefix + offsets + " end before they begin" +
                 at(offsetsValue->offset)};
  if (e.end > dataSize)
    return Error{prefix + offsets + " run past the end of the data (" +
                 std::to_string(dataSize) + " bytes from offset " +
                 std::to_string(dataStart) + ")" + at(offsetsValue->offset)};

  int64_t numElements, numBytes;
  std::string what =
      "shape " + shapeString(e.shape) + " of " + safetensorsDTypeName(e.dtype);
  if (!checkedNumElements(e.shape, dtypeSize(e.dtype), numElements, numBytes))
    return Error{prefix + what + " is too large: " +
                 "its byte size overflows int64" + at(shapeValue->offset)};
  if (e.end - e.begin != static_cast<uint64_t>(numBytes))
    return Error{prefix + offsets + " give " + std::to_string(e.end - e.begin) +
                 " bytes but " + what + " needs " + std::to_string(numBytes) +
                 at(offsetsValue->offset)};
  return e;
}

static ErrorOr<SafeTensorsFile> parseImpl(const uint8_t *data, size_t size) {
  if (size < 8)
    return Error{"file has " + std::to_string(size) +
                 " bytes, too short for the 8-byte header length"};
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | data[i];
  if (headerLen > size - 8)
    return Error{"header length " + std::to_string(headerLen) +
                 " exceeds the " + std::to_string(size - 8) +
                 " bytes after the length field (file has " +
                 std::to_string(size) + " bytes)"};
  if (headerLen > kMaxSafeTensorsHeaderBytes)
    return Error{"header length " + std::to_string(headerLen) +
                 " at offset 0 is over the limit of " +
                 std::to_string(kMaxSafeTensorsHeaderBytes) +
                 " bytes (the safetensors format's own)"};

  ErrorOr<json::Value> header = json::parse(
      reinterpret_cast<const char *>(data + 8), headerLen, /*baseOffset=*/8);
  if (!header)
    return Error{"invalid header JSON: " + header.error()};
  if (!header->isObject())
    return Error{"header must be a JSON object" + at(header->offset)};

  size_t dataStart = 8 + headerLen;
  uint64_t dataSize = size - dataStart;
  SafeTensorsFile file;
  std::vector<Entry> entries;
  std::set<std::string> seen;
  bool seenMetadata = false;
  for (const json::Member &m : header->members) {
    if (m.key == kMetadataKey) {
      if (seenMetadata)
        return Error{"duplicate '__metadata__'" + at(m.keyOffset)};
      seenMetadata = true;
      if (!m.value.isObject())
        return Error{"'__metadata__' must be an object of strings" +
                     at(m.value.offset)};
      for (const json::Member &kv : m.value.members) {
        if (!kv.value.isString())
          return Error{"'__metadata__' value for '" + kv.key +
                       "' must be a string" + at(kv.value.offset)};
        if (!file.metadata.emplace(kv.key, kv.value.string).second)
          return Error{"duplicate '__metadata__' key '" + kv.key + "'" +
                       at(kv.keyOffset)};
      }
      continue;
    }
    if (!seen.insert(m.key).second)
      return Error{"duplicate tensor name '" + m.key + "'" + at(m.keyOffset)};
    ErrorOr<Entry> entry = checkEntry(m.key, m.value, dataSize, dataStart);
    if (!entry)
      return Error{entry.error()};
    entries.push_back(entry.take());
  }

  // Only now, with every entry checked, copy the data.
  file.tensors.reserve(entries.size());
  for (Entry &e : entries) {
    Tensor t;
    t.dtype = e.dtype;
    t.shape = std::move(e.shape);
    t.data.assign(data + dataStart + e.begin, data + dataStart + e.end);
    file.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  return file;
}

ErrorOr<SafeTensorsFile> loom::parseSafeTensors(const uint8_t *data,
                                                size_t size) {
  ErrorOr<SafeTensorsFile> result = parseImpl(data, size);
  if (!result)
    return Error{"safetensors: " + result.error()};
  return result;
}

ErrorOr<SafeTensorsFile> loom::readSafeTensors(const std::string &path) {
  ErrorOr<std::vector<uint8_t>> bytes = readFileBytes(path);
  if (!bytes)
    return Error{bytes.error()};
  ErrorOr<SafeTensorsFile> result = parseImpl(bytes->data(), bytes->size());
  if (!result)
    return Error{path + ": " + result.error()};
  return result;
}

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// Builds the length field and padded header, and the order in which the
/// tensors' data follows it.
static ErrorOr<std::vector<uint8_t>>
buildHeader(const NamedTensors &tensors,
            const std::map<std::string, std::string> &metadata,
            std::vector<const std::pair<std::string, Tensor> *> &order) {
  order.clear();
  for (const auto &named : tensors)
    order.push_back(&named);
  // The reference implementation's order: decreasing dtype (roughly
  // decreasing alignment), then name. Stored back to back in this order
  // after an 8-byte aligned header, every tensor is aligned to its element
  // size.
  std::sort(order.begin(), order.end(), [](const auto *a, const auto *b) {
    int ra = dtypeRank(a->second.dtype), rb = dtypeRank(b->second.dtype);
    if (ra != rb)
      return ra > rb;
    return a->first < b->first;
  });

  // The reader (ours and the reference one) rejects malformed UTF-8, so
  // refuse to write a file that could not be read back.
  for (const auto &[key, value] : metadata)
    if (!json::isValidUtf8(key) || !json::isValidUtf8(value))
      return Error{"metadata entry '" + key + "' is not valid UTF-8"};
  for (const auto *named : order)
    if (!json::isValidUtf8(named->first))
      return Error{"tensor name '" + named->first + "' is not valid UTF-8"};

  std::string text = "{";
  if (!metadata.empty()) {
    json::appendQuoted(text, kMetadataKey);
    text += ":{";
    bool first = true;
    for (const auto &[key, value] : metadata) {
      if (!first)
        text += ',';
      first = false;
      json::appendQuoted(text, key);
      text += ':';
      json::appendQuoted(text, value);
    }
    text += '}';
  }
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto *named : order) {
    const auto &[name, tensor] = *named;
    if (name == kMetadataKey)
      return Error{"'__metadata__' cannot be a tensor name"};
    if (!seen.insert(name).second)
      return Error{"duplicate tensor name '" + name + "'"};
    int64_t numElements, numBytes;
    if (!checkedNumElements(tensor.shape, dtypeSize(tensor.dtype), numElements,
                            numBytes) ||
        static_cast<uint64_t>(numBytes) != tensor.data.size())
      return Error{
          "tensor '" + name + "': holds " + std::to_string(tensor.data.size()) +
          " bytes, which does not match shape " + tensor.shapeString() +
          " of " + safetensorsDTypeName(tensor.dtype)};
    if (text.size() > 1)
      text += ',';
    json::appendQuoted(text, name);
    text += ":{\"dtype\":\"";
    text += safetensorsDTypeName(tensor.dtype);
    text += "\",\"shape\":[";
    for (size_t d = 0; d < tensor.shape.size(); ++d) {
      if (d)
        text += ',';
      text += std::to_string(tensor.shape[d]);
    }
    text += "],\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + tensor.data.size()) + "]}";
    offset += tensor.data.size();
  }
  text += '}';
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i)
    out[i] =
        static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

ErrorOr<std::vector<uint8_t>>
loom::serializeSafeTensors(const NamedTensors &tensors,
                           const std::map<std::string, std::string> &metadata) {
  std::vector<const std::pair<std::string, Tensor> *> order;
  ErrorOr<std::vector<uint8_t>> out = buildHeader(tensors, metadata, order);
  if (!out)
    return Error{"safetensors: " + out.error()};
  for (const auto *named : order)
    out->insert(out->end(), named->second.data.begin(),
                named->second.data.end());
  return out;
}

Status
loom::writeSafeTensors(const std::string &path, const NamedTensors &tensors,
                       const std::map<std::string, std::string> &metadata) {
  std::vector<const std::pair<std::string, Tensor> *> order;
  ErrorOr<std::vector<uint8_t>> header = buildHeader(tensors, metadata, order);
  if (!header)
    return Error{path + ": " + header.error()};
  // Write the tensors from their own buffers: a checkpoint can be large.
  std::vector<ByteRange> chunks = {{header->data(), header->size()}};
  for (const auto *named : order)
    chunks.push_back({named->second.data.data(), named->second.data.size()});
  return writeFileAtomic(path, chunks);
}
