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
/// On `<Model>_grad`: returns the loss, then d loss / d param per parameter.
constexpr const char *kGradAttr = "loom.grad";
/// On `loom.param`: how `loom init` initializes it (PyTorch's defaults).
constexpr const char *kInitAttr = "loom.init";
} // namespace loom

#endif
