//===- loom-opt.cpp - mlir-opt with the loom dialect and passes -------===//
//
// The `-opt` driver of loom: parses, verifies, transforms and prints IR with
// every loom pass and the upstream dialects loom lowers through registered.
//
//===----------------------------------------------------------------------===//

#include "codegen/Pipeline.h"
#include "ir/LoomDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  loom::registerCodegen(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "loom optimizer driver\n", registry));
}
