//===- LoomDialect.td - the loom dialect definition --------*- tablegen -*-===//
//
// The `loom` dialect: value-semantics tensor ops for recurrent networks.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_DIALECT_TD
#define LOOM_DIALECT_TD

include "mlir/IR/OpBase.td"

def Loom_Dialect : Dialect {
  let name = "loom";
  let cppNamespace = "::loom";
  let summary = "Recurrent neural network ops with value semantics on tensors.";
  let description = [{
    The `loom` dialect describes recurrent models as ops on builtin `tensor`
    values. Parameters are named (`loom.param`), the time loop is a region op
    (`loom.scan`) whose body computes one step for a whole batch, and cells
    written in the loom DSL (including the built-in `rnn`, `lstm` and `gru`)
    are ordinary ops inside that body. Sequences are `[T, B, F]`; T and B are
    dynamic (`?`) so that one compiled model serves every sequence length and
    batch size.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

class Loom_Op<string mnemonic, list<Trait> traits = []>
    : Op<Loom_Dialect, mnemonic, traits>;

#endif // LOOM_DIALECT_TD
