//===- DatasetTest.cpp - Tests of named-array datasets and shuffling ------===//
//
// The expected permutations were computed by an independent Python
// implementation of the algorithm documented in Dataset.h; they must never
// change, since they decide which examples form each batch of a run.
//
//===----------------------------------------------------------------------===//

#include "runtime/Dataset.h"
#include "runtime/Npy.h"

#include "TestUtil.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

using namespace loom;
using namespace loom::test;

namespace {

std::string datasetError(const std::string &spec) {
  ErrorOr<Dataset> d = loadDataset(spec);
  EXPECT_FALSE(d.ok()) << spec;
  return d.ok() ? "" : d.error();
}

std::vector<float> floats(const Tensor &t) {
  return std::vector<float>(t.f32Data(), t.f32Data() + t.numElements());
}

std::vector<int64_t> ints(const Tensor &t) {
  return std::vector<int64_t>(t.i64Data(), t.i64Data() + t.numElements());
}

/// A dataset of 5 examples: tokens [5, 3] f32 and labels [5] i64.
class DatasetFiles : public ::testing::Test {
protected:
  void SetUp() override {
    tokens = dir.path("tokens.npy");
    labels = dir.path("labels.npy");
    ASSERT_TRUE(
        writeNpy(tokens, Tensor::f32({5, 3}, {0, 1, 2, 10, 11, 12, 20, 21, 22,
                                              30, 31, 32, 40, 41, 42}))
            .ok());
    ASSERT_TRUE(writeNpy(labels, Tensor::i64({5}, {0, 1, 0, 1, 1})).ok());
  }
  ScratchDir dir;
  std::string tokens, labels;
};

TEST_F(DatasetFiles, Loads) {
  ErrorOr<Dataset> d = loadDataset("x=" + tokens + ",y=" + labels);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->size, 5);
  EXPECT_EQ(d->names, (std::vector<std::string>{"x", "y"}));
  ASSERT_EQ(d->arrays.size(), 2u);
  EXPECT_EQ(d->arrays[0].shape, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(d->arrays[1].dtype, DType::I64);
  ASSERT_NE(d->find("y"), nullptr);
  EXPECT_EQ(ints(*d->find("y")), (std::vector<int64_t>{0, 1, 0, 1, 1}));
  EXPECT_EQ(d->find("z"), nullptr);
}

TEST_F(DatasetFiles, LoadErrors) {
  EXPECT_EQ(datasetError(""), "dataset: the specification is empty (expected "
                              "NAME=FILE.npy,NAME=FILE.npy,...)");
  EXPECT_EQ(datasetError("x=" + tokens + ",labels"),
            "dataset: malformed entry 'labels' at offset " +
                std::to_string(3 + tokens.size()) +
                " of the specification (expected NAME=FILE.npy)");
  EXPECT_EQ(datasetError("=" + tokens),
            "dataset: malformed entry '=" + tokens +
                "' at offset 0 of the specification (expected NAME=FILE.npy)");
  EXPECT_EQ(datasetError("x="), "dataset: malformed entry 'x=' at offset 0 of "
                                "the specification (expected NAME=FILE.npy)");
  EXPECT_EQ(datasetError("x=" + tokens + ","),
            "dataset: malformed entry '' at offset " +
                std::to_string(3 + tokens.size()) +
                " of the specification (expected NAME=FILE.npy)");
  EXPECT_EQ(datasetError("x=" + tokens + ",x=" + labels),
            "dataset: duplicate name 'x' at offset " +
                std::to_string(3 + tokens.size()) + " of the specification");

  // The npy reader's messages pass through.
  std::string missing = dir.path("missing.npy");
  EXPECT_EQ(datasetError("x=" + missing),
            missing + ": cannot open: No such file or directory");

  std::string scalar = dir.path("scalar.npy");
  ASSERT_TRUE(writeNpy(scalar, Tensor::i64({}, {3})).ok());
  EXPECT_EQ(datasetError("x=" + tokens + ",s=" + scalar),
            "dataset: 's' (" + scalar +
                ") is a scalar; each array needs a first dimension indexing "
                "the examples");

  std::string empty = dir.path("empty.npy");
  ASSERT_TRUE(writeNpy(empty, Tensor::f32({0, 3}, {})).ok());
  EXPECT_EQ(datasetError("e=" + empty),
            "dataset: 'e' (" + empty + ") has no rows");

  std::string four = dir.path("four.npy");
  ASSERT_TRUE(writeNpy(four, Tensor::i64({4}, {1, 2, 3, 4})).ok());
  EXPECT_EQ(datasetError("tokens=" + tokens + ",labels=" + four),
            "dataset: 'labels' has 4 rows but 'tokens' has 5");
}

TEST(DatasetTest, SplitMix64MatchesTheReference) {
  // The first outputs of splitmix64 seeded with 0 (Vigna's reference code).
  uint64_t state = 0;
  EXPECT_EQ(splitMix64(state), 0xe220a8397b1dcdafull);
  EXPECT_EQ(splitMix64(state), 0x6e789e6aa1b965f4ull);
}

TEST(DatasetTest, ShuffledOrderIsFixed) {
  EXPECT_EQ(shuffledOrder(10, 42, 0),
            (std::vector<int64_t>{4, 6, 7, 0, 9, 5, 1, 2, 3, 8}));
  EXPECT_EQ(shuffledOrder(10, 42, 1),
            (std::vector<int64_t>{8, 7, 9, 0, 1, 2, 5, 6, 4, 3}));
  EXPECT_EQ(shuffledOrder(10, 7, 0),
            (std::vector<int64_t>{7, 6, 9, 2, 8, 4, 0, 3, 5, 1}));
  EXPECT_EQ(shuffledOrder(20, 1234, 3),
            (std::vector<int64_t>{19, 0,  3, 18, 4, 10, 9,  5, 12, 16,
                                  15, 14, 1, 11, 2, 7,  17, 6, 13, 8}));
}

TEST(DatasetTest, ShuffledOrderIsAPermutation) {
  EXPECT_TRUE(shuffledOrder(0, 1, 0).empty());
  EXPECT_TRUE(shuffledOrder(-5, 1, 0).empty());
  EXPECT_EQ(shuffledOrder(1, 1, 0), (std::vector<int64_t>{0}));
  for (int64_t n : {2, 3, 17, 1000}) {
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      std::vector<int64_t> order = shuffledOrder(n, 99, epoch);
      EXPECT_EQ(order, shuffledOrder(n, 99, epoch));
      std::sort(order.begin(), order.end());
      std::vector<int64_t> expected(static_cast<size_t>(n));
      std::iota(expected.begin(), expected.end(), 0);
      EXPECT_EQ(order, expected);
    }
  }
  EXPECT_NE(shuffledOrder(1000, 99, 0), shuffledOrder(1000, 99, 1));
  EXPECT_NE(shuffledOrder(1000, 99, 0), shuffledOrder(1000, 100, 0));
}

TEST(DatasetTest, ShuffledOrderIsRoughlyUniform) {
  // Each of the 6 permutations of 3 elements over 6000 epochs: expected
  // 1000 each; a fair shuffle stays well within +-150.
  std::map<std::vector<int64_t>, int> counts;
  for (int64_t epoch = 0; epoch < 6000; ++epoch)
    ++counts[shuffledOrder(3, 5, epoch)];
  EXPECT_EQ(counts.size(), 6u);
  for (const auto &entry : counts) {
    EXPECT_GT(entry.second, 850);
    EXPECT_LT(entry.second, 1150);
  }
}

TEST(DatasetTest, GathersRows) {
  Tensor x = Tensor::f32(
      {4, 2, 2}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33});
  Tensor g = gatherRows(x, {3, 0, 3});
  EXPECT_EQ(g.dtype, DType::F32);
  EXPECT_EQ(g.shape, (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(floats(g),
            (std::vector<float>{30, 31, 32, 33, 0, 1, 2, 3, 30, 31, 32, 33}));

  Tensor y = Tensor::i64({3}, {7, 8, 9});
  Tensor h = gatherRows(y, {2, 1});
  EXPECT_EQ(h.dtype, DType::I64);
  EXPECT_EQ(h.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(ints(h), (std::vector<int64_t>{9, 8}));

  Tensor none = gatherRows(y, {});
  EXPECT_EQ(none.shape, (std::vector<int64_t>{0}));
  EXPECT_TRUE(none.data.empty());

  // Rows of zero elements.
  Tensor z = Tensor::zeros(DType::F32, {3, 0});
  EXPECT_EQ(gatherRows(z, {1, 2}).shape, (std::vector<int64_t>{2, 0}));
}

TEST_F(DatasetFiles, GathersBatchesOfADataset) {
  ErrorOr<Dataset> d = loadDataset("x=" + tokens + ",y=" + labels);
  ASSERT_TRUE(d.ok()) << d.error();
  Dataset batch = gatherRows(*d, {4, 1});
  EXPECT_EQ(batch.size, 2);
  EXPECT_EQ(batch.names, d->names);
  EXPECT_EQ(floats(batch.arrays[0]),
            (std::vector<float>{40, 41, 42, 10, 11, 12}));
  EXPECT_EQ(ints(batch.arrays[1]), (std::vector<int64_t>{1, 1}));
}

TEST_F(DatasetFiles, SplitsTheTail) {
  ErrorOr<Dataset> d = loadDataset("x=" + tokens + ",y=" + labels);
  ASSERT_TRUE(d.ok()) << d.error();
  // round(5 * 0.3) = round(1.5) = 2 rows for validation.
  ErrorOr<Dataset> valid = splitTail(*d, 0.3);
  ASSERT_TRUE(valid.ok()) << valid.error();
  EXPECT_EQ(d->size, 3);
  EXPECT_EQ(valid->size, 2);
  EXPECT_EQ(valid->names, d->names);
  EXPECT_EQ(d->arrays[0].shape, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(floats(d->arrays[0]),
            (std::vector<float>{0, 1, 2, 10, 11, 12, 20, 21, 22}));
  EXPECT_EQ(ints(d->arrays[1]), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(valid->arrays[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(floats(valid->arrays[0]),
            (std::vector<float>{30, 31, 32, 40, 41, 42}));
  EXPECT_EQ(ints(valid->arrays[1]), (std::vector<int64_t>{1, 1}));
}

TEST_F(DatasetFiles, SplitErrors) {
  ErrorOr<Dataset> d = loadDataset("x=" + tokens + ",y=" + labels);
  ASSERT_TRUE(d.ok()) << d.error();
  auto splitError = [&](double fraction) {
    ErrorOr<Dataset> valid = splitTail(*d, fraction);
    EXPECT_FALSE(valid.ok());
    EXPECT_EQ(d->size, 5);
    EXPECT_EQ(d->arrays[0].shape, (std::vector<int64_t>{5, 3}));
    return valid.ok() ? "" : valid.error();
  };
  EXPECT_EQ(splitError(0), "dataset: the validation fraction must be between "
                           "0 and 1 (exclusive), got 0");
  EXPECT_EQ(splitError(1.5), "dataset: the validation fraction must be "
                             "between 0 and 1 (exclusive), got 1.5");
  EXPECT_EQ(splitError(std::nan("")),
            "dataset: the validation fraction must be between 0 and 1 "
            "(exclusive), got nan");
  EXPECT_EQ(splitError(0.05), "dataset: a validation fraction of 0.05 of 5 "
                              "rows leaves no validation rows");
  EXPECT_EQ(splitError(0.95), "dataset: a validation fraction of 0.95 of 5 "
                              "rows leaves no training rows");
}

} // namespace
