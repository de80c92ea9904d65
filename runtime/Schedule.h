//===- Schedule.h - Learning-rate schedules ---------------------*- C++ -*-===//
//
// The learning rate of a training run as a function of the optimizer steps
// done and the validation losses seen, following PyTorch so that loom's
// training reproduces its trajectories:
//
// - Constant: lr = lr0.
// - Step: torch.optim.lr_scheduler.StepLR(step_size, gamma) stepped once per
//   optimizer step: lr = lr0 * gamma^floor(steps / stepSize), computed as
//   StepLR does, by multiplying the current lr by gamma each time the step
//   count reaches a multiple of stepSize (so the values are bit-identical to
//   PyTorch's, not to pow()).
// - Plateau: the rule of pytorch/examples word_language_model, after each
//   validation:
//
//     if not best_val_loss or val_loss < best_val_loss:
//         best_val_loss = val_loss
//     else:
//         lr /= 4.0          # `factor`
//
//   (`not best_val_loss` is also true for a best loss of exactly 0.0, and
//   a NaN loss never counts as an improvement; both are kept.)
//
// The whole state round-trips through string key/value pairs, for
// checkpoint metadata, bit-exactly.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_SCHEDULE_H
#define LOOM_RUNTIME_SCHEDULE_H

#include "runtime/Status.h"

#include <cstdint>
#include <map>
#include <string>

namespace loom {

struct LrSchedule {
  enum Kind { Constant, Step, Plateau };

  // Configuration.
  Kind kind = Constant;
  /// The learning rate before any decay.
  double initialLr = 1.0;
  /// Step: decay every stepSize optimizer steps, by gamma.
  int64_t stepSize = 1;
  double gamma = 0.1;
  /// Plateau: divide by factor when the validation loss does not improve.
  double factor = 4.0;

  // State.
  double currentLr = 1.0;
  /// Step: the number of decays applied to currentLr.
  int64_t decays = 0;
  /// Plateau: the best validation loss so far, if any.
  bool hasBest = false;
  double bestLoss = 0.0;

  static LrSchedule constant(double lr);
  static LrSchedule step(double lr, int64_t stepSize, double gamma = 0.1);
  static LrSchedule plateau(double lr, double factor = 4.0);

  /// A schedule of the given kind, validated: lr, gamma and factor finite
  /// and positive, stepSize >= 1 (parameters another kind does not use are
  /// still checked, so pass the defaults). Errors name the bad parameter:
  /// "learning rate schedule: the step size must be at least 1, got 0".
  static ErrorOr<LrSchedule> create(Kind kind, double lr, int64_t stepSize,
                                    double gamma, double factor);

  /// The learning rate for the next optimizer step.
  double lr() const { return currentLr; }

  /// Call after each optimizer step with the total number of steps done
  /// (1 after the first). Step schedules decay here; the others ignore it.
  void onStep(int64_t stepsDone);

  /// Call after each validation. Plateau schedules decay here; the others
  /// ignore it.
  void onValidation(double loss);

  /// The configuration and state as "lr_schedule.*" keys, doubles printed
  /// with "%.17g" (exact when read back).
  std::map<std::string, std::string> save() const;

  /// Replaces this schedule with the one saved in metadata (other keys are
  /// ignored). Errors ("learning rate schedule: ..." naming the key) for a
  /// missing key, text that is not entirely a number, or an invalid value;
  /// on error *this is unchanged.
  Status restore(const std::map<std::string, std::string> &metadata);
};

/// "constant", "step" or "plateau".
const char *scheduleKindName(LrSchedule::Kind kind);

/// Parses a schedule name; error: "unknown learning rate schedule 'X'
/// (expected 'constant', 'step' or 'plateau')".
ErrorOr<LrSchedule::Kind> parseScheduleKind(const std::string &name);

} // namespace loom

#endif // LOOM_RUNTIME_SCHEDULE_H
