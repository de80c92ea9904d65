//===- CheckpointTest.cpp - Tests of the checkpoint loader ----------------===//
//
// Round trips, and every check readCheckpoint makes against the resuming
// model, each with its message. The checkpoints the fuzzer starts from
// (fuzz/seeds/checkpoint/) are written by `loom train`; they must load with
// the fuzzer's spec, or the fuzzer would only ever see rejections.
//
//===----------------------------------------------------------------------===//

#include "runtime/Checkpoint.h"

#include "TestUtil.h"
#include "fuzz/CheckpointSpec.h"

#include <gtest/gtest.h>

using namespace loom;
using loom::test::ScratchDir;

namespace {

CheckpointSpec smallSpec() {
  CheckpointSpec s;
  s.model = "M";
  s.signature = "ABC";
  s.optimizer = "adam";
  s.parameters = {{"w", {2, 3}}, {"b", {3}}};
  s.slots = {{"w.exp_avg", {2, 3}}};
  s.carries = {{"h0", {1, 4, 3}}};
  return s;
}

struct Fixture {
  std::map<std::string, Tensor> params, carries;
  TrainProgress progress{7, 1, 3};
  LrSchedule schedule = LrSchedule::step(0.5, 2, 0.25);
  Fixture() {
    params["w"] = Tensor::f32({2, 3}, {1, 2, 3, 4, 5, 6});
    params["b"] = Tensor::f32({3}, {-1, 0, 1});
    params["w.exp_avg"] = Tensor::f32({2, 3}, {0.5, 0, 0, 0, 0, 0.25});
    carries["h0"] = Tensor::zeros(DType::F32, {1, 4, 3});
    schedule.onStep(2);
  }
  SafeTensorsFile file(const CheckpointSpec &spec) const {
    auto bytes =
        serializeCheckpoint(spec, params, carries, progress, 42, schedule);
    EXPECT_TRUE(bytes.ok());
    auto f = parseSafeTensors(bytes->data(), bytes->size());
    EXPECT_TRUE(f.ok());
    return f.take();
  }
};

std::string loadError(const SafeTensorsFile &f,
                      const CheckpointSpec &spec = smallSpec()) {
  auto ck = checkpointFrom(f, spec);
  EXPECT_FALSE(ck.ok());
  return ck.ok() ? "" : ck.error();
}

TEST(CheckpointTest, RoundTripsThroughAFile) {
  ScratchDir dir;
  Fixture fx;
  std::string path = dir.path("ck.safetensors");
  ASSERT_TRUE(writeCheckpoint(path, smallSpec(), fx.params, fx.carries,
                              fx.progress, 42, fx.schedule)
                  .ok());
  auto ck = readCheckpoint(path, smallSpec());
  ASSERT_TRUE(ck.ok()) << ck.error();
  EXPECT_EQ(ck->progress.step, 7);
  EXPECT_EQ(ck->progress.epoch, 1);
  EXPECT_EQ(ck->progress.position, 3);
  EXPECT_EQ(ck->seed, 42u);
  EXPECT_EQ(ck->schedule.lr(), fx.schedule.lr());
  EXPECT_EQ(ck->schedule.decays, 1);
  ASSERT_EQ(ck->parameters.size(), 3u);
  EXPECT_EQ(ck->parameters["w"].data, fx.params["w"].data);
  EXPECT_EQ(ck->parameters["w.exp_avg"].data, fx.params["w.exp_avg"].data);
  EXPECT_EQ(ck->carries["h0"].shape, (std::vector<int64_t>{1, 4, 3}));
  // The only file in the directory: no temporary left behind.
  EXPECT_EQ(dir.list(), std::vector<std::string>{"ck.safetensors"});
}

TEST(CheckpointTest, FileErrorsNameThePath) {
  ScratchDir dir;
  auto ck = readCheckpoint(dir.path("none.safetensors"), smallSpec());
  ASSERT_FALSE(ck.ok());
  EXPECT_NE(ck.error().find("none.safetensors"), std::string::npos);
  // A weights file is not a checkpoint.
  std::string path = dir.path("w.safetensors");
  ASSERT_TRUE(
      writeSafeTensors(path, {{"w", Tensor::zeros(DType::F32, {2})}}).ok());
  ck = readCheckpoint(path, smallSpec());
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.error(), path + ": not a loom training checkpoint (no "
                               "'loom-checkpoint-1' format in its metadata)");
}

TEST(CheckpointTest, ChecksTheModelAndOptimizer) {
  Fixture fx;
  CheckpointSpec other = smallSpec();
  other.model = "Other";
  EXPECT_EQ(loadError(fx.file(other)),
            "the checkpoint is from a different model ('Other' with other "
            "parameters); it cannot resume this one");
  other = smallSpec();
  other.signature = "DEF";
  EXPECT_EQ(loadError(fx.file(other)),
            "the checkpoint is from a different model ('M' with other "
            "parameters); it cannot resume this one");
  other = smallSpec();
  other.optimizer = "sgd";
  EXPECT_EQ(loadError(fx.file(other)),
            "the checkpoint was trained with sgd, not adam");
  SafeTensorsFile f = fx.file(smallSpec());
  f.metadata.erase("optimizer");
  EXPECT_EQ(loadError(f),
            "the checkpoint was trained with no recorded optimizer, not adam");
}

TEST(CheckpointTest, ChecksTheProgress) {
  Fixture fx;
  const std::string msg = "the checkpoint's progress metadata (step, epoch, "
                          "position) is missing or malformed: each must be a "
                          "non-negative integer";
  for (const char *key : {"step", "epoch", "position"})
    for (const char *bad :
         {"", "-1", "3x", "1e3", " 4", "99999999999999999999"}) {
      SafeTensorsFile f = fx.file(smallSpec());
      f.metadata[key] = bad;
      EXPECT_EQ(loadError(f), msg) << key << "=" << bad;
      f.metadata.erase(key);
      EXPECT_EQ(loadError(f), msg) << key;
    }
  // A seed that does not read is ignored.
  SafeTensorsFile f = fx.file(smallSpec());
  f.metadata["seed"] = "x";
  auto ck = checkpointFrom(f, smallSpec());
  ASSERT_TRUE(ck.ok());
  EXPECT_EQ(ck->seed, 0u);
  // The schedule is checked by LrSchedule::restore.
  f.metadata["lr_schedule.lr"] = "-1";
  EXPECT_NE(loadError(f).find("'lr_schedule.lr' must be positive"),
            std::string::npos);
}

TEST(CheckpointTest, ChecksEveryTensor) {
  Fixture fx;
  SafeTensorsFile f = fx.file(smallSpec());
  CheckpointSpec spec = smallSpec();
  spec.parameters.push_back({"extra", {5}});
  EXPECT_EQ(loadError(f, spec), "the checkpoint lacks parameter 'extra' [5]");
  spec = smallSpec();
  spec.parameters[1].shape = {4};
  EXPECT_EQ(loadError(f, spec),
            "the checkpoint's parameter 'b' has shape [3], expected [4]");
  spec = smallSpec();
  spec.slots.push_back({"b.exp_avg", {3}});
  EXPECT_EQ(loadError(f, spec),
            "the checkpoint lacks optimizer state 'b.exp_avg' [3]");
  spec = smallSpec();
  spec.carries.push_back({"c0", {1, 4, 3}});
  EXPECT_EQ(loadError(f, spec),
            "the checkpoint lacks carried state 'carry.c0' [1, 4, 3] (a "
            "carried state's shape holds the batch size: resume with the "
            "--batch-size the checkpoint was trained with)");
  // Parameters may be stored in half precision, as weight files may; slots
  // and carried states must be F32.
  Fixture half;
  half.params["b"] = Tensor{DType::BF16, {3}, {0x80, 0x3f, 0, 0, 0, 0x40}};
  auto ck = checkpointFrom(half.file(smallSpec()), smallSpec());
  ASSERT_TRUE(ck.ok()) << ck.error();
  EXPECT_EQ(ck->parameters["b"].dtype, DType::F32);
  EXPECT_EQ(ck->parameters["b"].f32Data()[0], 1.0f);
  EXPECT_EQ(ck->parameters["b"].f32Data()[2], 2.0f);
  half.params["b"] = Tensor::i64({3}, {1, 2, 3});
  EXPECT_EQ(loadError(half.file(smallSpec())),
            "the checkpoint's parameter 'b' has dtype I64, expected F32, F16 "
            "or BF16");
  half = Fixture();
  half.params["w.exp_avg"] =
      Tensor{DType::F16, {2, 3}, std::vector<uint8_t>(12, 0)};
  EXPECT_EQ(loadError(half.file(smallSpec())),
            "the checkpoint's optimizer state 'w.exp_avg' has dtype F16, "
            "expected F32");
}

// The fuzzer's seeds are real `loom train` checkpoints of the model its
// spec describes.
TEST(CheckpointTest, FuzzSeedsLoadWithTheFuzzerSpec) {
  int loaded = 0;
  for (const auto &e : std::filesystem::directory_iterator(
           std::string(LOOM_SOURCE_DIR) + "/fuzz/seeds/checkpoint")) {
    if (e.path().extension() != ".safetensors")
      continue;
    auto file = readSafeTensors(e.path().string());
    ASSERT_TRUE(file.ok()) << file.error();
    auto ck = checkpointFrom(*file, fuzz::checkpointSpecFor(*file));
    EXPECT_TRUE(ck.ok()) << e.path() << ": " << ck.error();
    ++loaded;
  }
  EXPECT_GE(loaded, 2);
}

} // namespace
