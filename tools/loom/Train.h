//===- Train.h - `loom train` and `loom eval` ------------------*- C++ -*-===//
//
// Training and evaluation drivers: data (text corpora, token streams,
// named-array datasets), the compiled training step, validation,
// checkpoints and resuming. loom.cpp parses the flags into a TrainRequest.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_TOOLS_LOOM_TRAIN_H
#define LOOM_TOOLS_LOOM_TRAIN_H

#include "tools/loom/Driver.h"

#include <map>
#include <string>

namespace loom {

struct TrainRequest {
  Loaded *model = nullptr;
  bool useJit = true;
  TargetOptions target;
  /// Training settings given as flags, by the model file's setting names
  /// (`lr`, `batch_size`, ...): they override the model's `train` line.
  std::map<std::string, std::string> flags;
  std::string data, valid, dataset, vocab;
  std::string checkpoint, weights, logJson;
  bool resume = false;
  int64_t logEvery = 0;
  uint64_t seed = 0;
  int64_t checkpointEvery = 0;
};

/// `loom train`: exit code (0, or 1 after printing the error).
int runTrain(TrainRequest &req);

/// `loom eval`: loss and perplexity (LM) or loss and accuracy (datasets).
int runEval(TrainRequest &req);

} // namespace loom

#endif // LOOM_TOOLS_LOOM_TRAIN_H
