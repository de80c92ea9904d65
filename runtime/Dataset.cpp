//===- Dataset.cpp - Named-array datasets and portable shuffling ----------===//
//
// Arrays are handled as raw row bytes, so every dtype works the same way.
//
//===----------------------------------------------------------------------===//

#include "runtime/Dataset.h"
#include "runtime/Npy.h"

#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

using namespace loom;

const Tensor *Dataset::find(const std::string &name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name)
      return &arrays[i];
  return nullptr;
}

ErrorOr<Dataset> loom::loadDataset(const std::string &spec) {
  if (spec.empty())
    return Error{"dataset: the specification is empty (expected "
                 "NAME=FILE.npy,NAME=FILE.npy,...)"};
  Dataset data;
  size_t start = 0;
  while (true) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos)
      end = spec.size();
    std::string entry = spec.substr(start, end - start);
    size_t equals = entry.find('=');
    if (equals == std::string::npos || equals == 0 ||
        equals + 1 == entry.size())
      return Error{"dataset: malformed entry '" + entry + "' at offset " +
                   std::to_string(start) +
                   " of the specification (expected NAME=FILE.npy)"};
    std::string name = entry.substr(0, equals);
    std::string path = entry.substr(equals + 1);
    if (data.find(name))
      return Error{"dataset: duplicate name '" + name + "' at offset " +
                   std::to_string(start) + " of the specification"};
    ErrorOr<Tensor> array = readNpy(path);
    if (!array)
      return Error{array.error()};
    if (array->shape.empty())
      return Error{"dataset: '" + name + "' (" + path +
                   ") is a scalar; each array needs a first dimension "
                   "indexing the examples"};
    int64_t rows = array->shape[0];
    if (data.names.empty()) {
      if (rows == 0)
        return Error{"dataset: '" + name + "' (" + path + ") has no rows"};
      data.size = rows;
    } else if (rows != data.size) {
      return Error{"dataset: '" + name + "' has " + std::to_string(rows) +
                   " rows but '" + data.names[0] + "' has " +
                   std::to_string(data.size)};
    }
    data.names.push_back(std::move(name));
    data.arrays.push_back(array.take());
    if (end == spec.size())
      break;
    start = end + 1;
  }
  return data;
}

uint64_t loom::splitMix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<int64_t> loom::shuffledOrder(int64_t n, uint64_t seed,
                                         int64_t epoch) {
  std::vector<int64_t> order;
  if (n <= 0)
    return order;
  order.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    order[i] = i;
  uint64_t seedState = seed;
  uint64_t state = splitMix64(seedState) ^ static_cast<uint64_t>(epoch);
  for (int64_t i = n - 1; i >= 1; --i) {
    uint64_t bound = static_cast<uint64_t>(i) + 1;
    // 2^64 mod bound, computed in 64 bits.
    uint64_t threshold = (0 - bound) % bound;
    uint64_t r;
    do
      r = splitMix64(state);
    while (r < threshold);
    std::swap(order[i], order[r % bound]);
  }
  return order;
}

/// Bytes per row of an array of rank >= 1.
static size_t rowBytes(const Tensor &array) {
  size_t bytes = dtypeSize(array.dtype);
  for (size_t d = 1; d < array.shape.size(); ++d)
    bytes *= static_cast<size_t>(array.shape[d]);
  return bytes;
}

Tensor loom::gatherRows(const Tensor &array, const std::vector<int64_t> &rows) {
  assert(!array.shape.empty() && "gatherRows needs an array of rank >= 1");
  std::vector<int64_t> shape = array.shape;
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out = Tensor::zeros(array.dtype, std::move(shape));
  size_t stride = rowBytes(array);
  if (stride == 0)
    return out;
  for (size_t i = 0; i < rows.size(); ++i) {
    assert(rows[i] >= 0 && rows[i] < array.shape[0] && "row out of range");
    std::memcpy(out.data.data() + i * stride,
                array.data.data() + static_cast<size_t>(rows[i]) * stride,
                stride);
  }
  return out;
}

Dataset loom::gatherRows(const Dataset &data,
                         const std::vector<int64_t> &rows) {
  Dataset out;
  out.names = data.names;
  out.size = static_cast<int64_t>(rows.size());
  for (const Tensor &array : data.arrays)
    out.arrays.push_back(gatherRows(array, rows));
  return out;
}

/// Keeps rows [0, keep) of array in place and returns the others.
static Tensor cutTail(Tensor &array, int64_t keep) {
  size_t stride = rowBytes(array);
  Tensor tail;
  tail.dtype = array.dtype;
  tail.shape = array.shape;
  tail.shape[0] = array.shape[0] - keep;
  size_t cut = static_cast<size_t>(keep) * stride;
  tail.data.assign(array.data.begin() + cut, array.data.end());
  array.data.resize(cut);
  array.shape[0] = keep;
  return tail;
}

ErrorOr<Dataset> loom::splitTail(Dataset &data, double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", fraction);
  if (!(fraction > 0 && fraction < 1))
    return Error{std::string("dataset: the validation fraction must be "
                             "between 0 and 1 (exclusive), got ") +
                 text};
  int64_t count = static_cast<int64_t>(
      std::llround(static_cast<double>(data.size) * fraction));
  if (count == 0)
    return Error{std::string("dataset: a validation fraction of ") + text +
                 " of " + std::to_string(data.size) +
                 " rows leaves no validation rows"};
  if (count >= data.size)
    return Error{std::string("dataset: a validation fraction of ") + text +
                 " of " + std::to_string(data.size) +
                 " rows leaves no training rows"};
  Dataset tail;
  tail.names = data.names;
  tail.size = count;
  for (Tensor &array : data.arrays)
    tail.arrays.push_back(cutTail(array, data.size - count));
  data.size -= count;
  return tail;
}
