//===- CheckpointSpec.h - The checkpoint fuzzer's model ---------*- C++ -*-===//
//
// What fuzz/checkpoint-model/model.loom (FuzzLM) expects of a checkpoint,
// as `loom train` computes it: its parameters, the optimizer's slots and the
// carried state at batch size 2. The seeds in fuzz/seeds/checkpoint/ are
// its checkpoints; CheckpointTest checks that they load with this spec.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_FUZZ_CHECKPOINTSPEC_H
#define LOOM_FUZZ_CHECKPOINTSPEC_H

#include "runtime/Checkpoint.h"

namespace loom::fuzz {

/// The spec for FuzzLM trained with `optimizer` ("adam", "adamw", or "sgd"
/// with momentum).
inline CheckpointSpec checkpointSpec(const std::string &optimizer = "adam") {
  CheckpointSpec s;
  s.model = "FuzzLM";
  s.signature = "D66128B3B225E9B1";
  s.optimizer = optimizer;
  s.parameters = {{"emb.weight", {5, 2}},
                  {"rnn.weight_ih_l0", {3, 2}},
                  {"rnn.weight_hh_l0", {3, 3}},
                  {"rnn.bias_ih_l0", {3}},
                  {"rnn.bias_hh_l0", {3}},
                  {"out.weight", {5, 3}},
                  {"out.bias", {5}}};
  const std::vector<const char *> slots =
      optimizer == "sgd" ? std::vector<const char *>{".momentum_buffer"}
                         : std::vector<const char *>{".exp_avg", ".exp_avg_sq"};
  for (const TensorSpec &p : s.parameters)
    for (const char *slot : slots)
      s.slots.push_back({"optimizer." + p.name + slot, p.shape});
  s.carries = {{"h0", {1, 2, 3}}};
  return s;
}

/// The spec of the optimizer a file names, so that the fuzzer reaches both
/// kinds of slots; any other name is checked against Adam's.
inline CheckpointSpec checkpointSpecFor(const SafeTensorsFile &file) {
  auto opt = file.metadata.find("optimizer");
  return checkpointSpec(
      opt != file.metadata.end() && opt->second == "sgd" ? "sgd" : "adam");
}

} // namespace loom::fuzz

#endif // LOOM_FUZZ_CHECKPOINTSPEC_H
