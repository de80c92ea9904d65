//===- LoomDialect.cpp - the loom dialect registration ----------------===//
#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"

using namespace mlir;
using namespace loom;

#include "ir/LoomDialect.cpp.inc"

void LoomDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ir/LoomOps.cpp.inc"
      >();
}
