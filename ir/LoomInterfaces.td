//===- LoomInterfaces.td - interfaces of the loom dialect --*- tablegen -*-===//
//
// DifferentiableOpInterface: the reverse-mode rule of each op lives with the
// op, so loom-differentiate works for any composition of ops, including the
// body of a user-written cell.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_INTERFACES_TD
#define LOOM_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Loom_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::loom";
  let description = [{
    An op with a vector-Jacobian product: given the adjoints of its results
    (null where a result does not influence the loss), it builds the adjoints
    of its operands with loom ops at the builder's insertion point. Operands
    that carry no gradient (integer ids, lengths, sizes) get null.
  }];
  let methods = [
    InterfaceMethod<
      "Builds the adjoints of the operands from those of the results.",
      "::llvm::LogicalResult", "buildVJP",
      (ins "::mlir::OpBuilder &":$builder,
           "::llvm::ArrayRef<::mlir::Value>":$resultAdjoints,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandAdjoints)>
  ];
}

#endif // LOOM_INTERFACES_TD
