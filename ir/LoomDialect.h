//===- LoomDialect.h - the loom dialect -----------------------*- C++ -*-===//
#ifndef LOOM_IR_LOOMDIALECT_H
#define LOOM_IR_LOOMDIALECT_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "ir/LoomDialect.h.inc"

namespace loom {
/// Attribute names on a model function: the DSL names of inputs and outputs
/// and the declared dimensions of each input (constants or size names).
constexpr const char *kNameAttr = "loom.name";
constexpr const char *kDimsAttr = "loom.dims";
/// On the model function: marks it as a loom model entry point.
constexpr const char *kModelAttr = "loom.model";
/// On `<Model>_loss`: the model's body returning its scalar loss.
constexpr const char *kLossAttr = "loom.loss";
/// On `<Model>_grad`: returns the loss, then d loss / d param per parameter
/// (then the carried states, as `<Model>_loss`).
constexpr const char *kGradAttr = "loom.grad";
/// On `<Model>_step`: one training step (forward, backward, clipping and the
/// optimizer update; see loom-train-step).
constexpr const char *kStepAttr = "loom.step";
/// On `<Model>_loss` (and the functions derived from it): the model file's
/// `train` settings, a dictionary of numbers (f64) and names (strings).
constexpr const char *kTrainAttr = "loom.train";
/// On a result of `<Model>_loss`/`_grad`/`_step`: the final value of the
/// recurrent-state input of the same name, fed back to the next step.
constexpr const char *kCarryAttr = "loom.carry";
/// On a result of a model function: it is the final value of the
/// recurrent-state input named here (`h_n` of `state = h0`), which a
/// streaming session feeds back as that input on its next call.
constexpr const char *kStateOfAttr = "loom.state_of";
/// The argument of `<Model>_loss` (when the model has dropout) holding
/// `[seed, step]` for loom.dropout's masks; a negative seed turns them off.
constexpr const char *kDropoutKeyName = "dropout_key";
/// On `loom.param`: how `loom init` initializes it (PyTorch's defaults).
constexpr const char *kInitAttr = "loom.init";
/// On the `scf.for` over time that a `loom.scan` lowers to (forward and
/// reverse alike), so that loom-unroll-time finds only time loops.
constexpr const char *kTimeLoopAttr = "loom.time_loop";
/// On a time loop loom-unroll-time has handled: the steps per iteration
/// (1 on the epilogue loop of the remaining steps).
constexpr const char *kUnrolledAttr = "loom.unrolled";
} // namespace loom

#endif
