//===- Dataset.h - Named-array datasets and portable shuffling --*- C++ -*-===//
//
// The training data of models other than language models (for example
// sequence classification): a set of named .npy arrays whose first
// dimensions index the same examples, batches gathered from them by row, a
// shuffle that is identical on every platform, and a train/validation split.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_DATASET_H
#define LOOM_RUNTIME_DATASET_H

#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace loom {

/// Named arrays of rank >= 1 sharing their first dimension, `size`: row i of
/// every array belongs to example i.
struct Dataset {
  std::vector<std::string> names;
  std::vector<Tensor> arrays;
  int64_t size = 0;

  /// The array called name, or nullptr.
  const Tensor *find(const std::string &name) const;
};

/// Loads "NAME=FILE.npy,NAME=FILE.npy,...". Errors start with "dataset: "
/// (a malformed entry or a repeated name, with its offset in spec; an array
/// of rank 0; an array with no rows; first dimensions that disagree:
/// "dataset: 'labels' has 90 rows but 'tokens' has 100"), except those of
/// the npy reader, passed through ("<path>: ...").
ErrorOr<Dataset> loadDataset(const std::string &spec);

/// One step of splitmix64 (Steele, Lea and Flood, 2014): advances state by
/// 0x9e3779b97f4a7c15 and returns the mixed state:
///
///   z = (state += 0x9e3779b97f4a7c15)
///   z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
///   z = (z ^ (z >> 27)) * 0x94d049bb133111eb
///   return z ^ (z >> 31)
uint64_t splitMix64(uint64_t &state);

/// A uniformly random permutation of 0 .. n-1 for (seed, epoch), the same on
/// every platform, compiler and run:
///
///   s = seed; state = splitMix64(s) ^ uint64_t(epoch)
///   order = [0, 1, ..., n-1]
///   for i = n-1 down to 1:
///     j = below(i + 1); swap(order[i], order[j])
///
/// where below(m) draws r = splitMix64(state) until r >= 2^64 mod m and
/// returns r mod m (rejection sampling, so j is exactly uniform). No
/// std::shuffle or std::uniform_int_distribution, whose results are
/// implementation-defined. n <= 0 gives an empty order.
std::vector<int64_t> shuffledOrder(int64_t n, uint64_t seed, int64_t epoch);

/// The rows of array (rank >= 1, any dtype) at the given indices, in that
/// order: shape [rows.size(), array.shape[1:]...]. Every index must be in
/// [0, array.shape[0]).
Tensor gatherRows(const Tensor &array, const std::vector<int64_t> &rows);

/// The same rows of every array of data.
Dataset gatherRows(const Dataset &data, const std::vector<int64_t> &rows);

/// Moves the last llround(data.size * fraction) rows (rounded half away from
/// zero) of every array into a new dataset, for validation, and returns it;
/// data keeps the first rows.
/// Errors (data unchanged): a fraction outside (0, 1), or a split that
/// leaves either side without rows.
ErrorOr<Dataset> splitTail(Dataset &data, double fraction);

} // namespace loom

#endif // LOOM_RUNTIME_DATASET_H
