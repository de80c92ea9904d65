//===- Checkpoint.h - Training checkpoints ----------------------*- C++ -*-===//
//
// A training checkpoint is a safetensors file that `loom train --resume`
// continues bit-exactly:
//
// - tensors: every parameter and optimizer slot by its step-function name
//   ("lstm.weight_ih_l0", "lstm.weight_ih_l0.exp_avg", ...), and for
//   language models the recurrent states carried between BPTT chunks as
//   "carry.<state>";
// - metadata: "format" = "loom-checkpoint-1", the model's name and parameter
//   signature, the optimizer, the progress ("step", "epoch", "position"),
//   the seed, and the learning-rate schedule (LrSchedule::save).
//
// readCheckpoint checks everything against what the resuming model expects
// (a CheckpointSpec) before training starts, so that a checkpoint of
// another model, another optimizer or another batch size, a damaged or
// hand-edited one, is an error naming the problem rather than garbage fed
// to the step function. The loader needs no MLIR: the caller describes the
// model.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_CHECKPOINT_H
#define LOOM_RUNTIME_CHECKPOINT_H

#include "runtime/SafeTensors.h"
#include "runtime/Schedule.h"
#include "runtime/Status.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom {

/// The "format" metadata value of a checkpoint.
inline constexpr const char *kCheckpointFormat = "loom-checkpoint-1";

/// A tensor a checkpoint must hold: its name and shape.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

/// What the resuming model expects of a checkpoint.
struct CheckpointSpec {
  std::string model;     // the model's name
  std::string signature; // a hash of its parameter names and shapes
  std::string optimizer; // "sgd", "adam", ...
  /// Parameters: F32, F16 or BF16 (converted to f32), as in weight files.
  std::vector<TensorSpec> parameters;
  /// Optimizer slots: F32 of exactly this shape.
  std::vector<TensorSpec> slots;
  /// Carried states ("carry.<name>" in the file): F32 of this shape (the
  /// batch size substituted). Empty for models that carry nothing.
  std::vector<TensorSpec> carries;
};

/// How far a training run has got.
struct TrainProgress {
  int64_t step = 0;     // optimizer steps done
  int64_t epoch = 0;    // current epoch (0-based)
  int64_t position = 0; // next chunk / batch within the epoch
};

struct Checkpoint {
  /// Parameters and optimizer slots by name (all f32).
  std::map<std::string, Tensor> parameters;
  /// Carried states by state name (without "carry.").
  std::map<std::string, Tensor> carries;
  TrainProgress progress;
  uint64_t seed = 0; // the run's seed (recorded, not checked)
  LrSchedule schedule;
};

/// Checks a parsed safetensors file against `spec` and extracts the
/// checkpoint, moving the tensors out of `file` (pass it with std::move to
/// avoid a copy). Errors describe the problem without a file name.
ErrorOr<Checkpoint> checkpointFrom(SafeTensorsFile file,
                                   const CheckpointSpec &spec);

/// Reads and checks a checkpoint file. Errors start with "<path>: ".
ErrorOr<Checkpoint> readCheckpoint(const std::string &path,
                                   const CheckpointSpec &spec);

/// The safetensors bytes of a checkpoint: `parameters` as they are,
/// `carries` as "carry.<name>", the metadata from `spec` and the rest.
ErrorOr<std::vector<uint8_t>> serializeCheckpoint(
    const CheckpointSpec &spec, const std::map<std::string, Tensor> &parameters,
    const std::map<std::string, Tensor> &carries, const TrainProgress &progress,
    uint64_t seed, const LrSchedule &schedule);

/// Writes a checkpoint atomically (writeFileAtomic: a reader, or a run
/// killed mid-write, sees the old file or the new one, never a mix).
/// Errors start with "<path>: ".
Status writeCheckpoint(const std::string &path, const CheckpointSpec &spec,
                       const std::map<std::string, Tensor> &parameters,
                       const std::map<std::string, Tensor> &carries,
                       const TrainProgress &progress, uint64_t seed,
                       const LrSchedule &schedule);

} // namespace loom

#endif // LOOM_RUNTIME_CHECKPOINT_H
