// RUN: loom-opt %s -loom-parallel-to-runtime | FileCheck %s

// A call of an outlined loop body (after the conversion to the LLVM
// dialect) goes through the thread pool: its arguments are stored in a
// struct on the caller's stack (allocated in the entry block), and a
// trampoline loads them and calls the body on the range it is given.
// CHECK-LABEL: llvm.func @f(
// CHECK: %[[ONE:.*]] = llvm.mlir.constant(1 : i64) : i64
// CHECK: %[[SLOT:.*]] = llvm.alloca %[[ONE]] x !llvm.struct<(ptr, i64, f32)>
// CHECK: llvm.br ^bb1
// CHECK: ^bb1:
// CHECK: %[[U:.*]] = llvm.mlir.undef : !llvm.struct<(ptr, i64, f32)>
// CHECK: %[[S0:.*]] = llvm.insertvalue %arg0, %[[U]][0]
// CHECK: %[[S1:.*]] = llvm.insertvalue %arg1, %[[S0]][1]
// CHECK: %[[S2:.*]] = llvm.insertvalue %arg2, %[[S1]][2]
// CHECK: llvm.store %[[S2]], %[[SLOT]]
// CHECK: %[[FN:.*]] = llvm.mlir.addressof @f__par0__task
// CHECK: llvm.call @loom_parallel_for(%[[FN]], %[[SLOT]], %arg1)
// CHECK-NOT: llvm.call @f__par0(
// CHECK: llvm.func @f__par0(%{{.*}}: i64, %{{.*}}: i64, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: f32)
// CHECK-NOT: loom.parallel_body
// CHECK: llvm.func internal @f__par0__task(%[[CTX:.*]]: !llvm.ptr, %[[B:.*]]: i64, %[[E:.*]]: i64)
// CHECK: %[[V:.*]] = llvm.load %[[CTX]] : !llvm.ptr -> !llvm.struct<(ptr, i64, f32)>
// CHECK: %[[F0:.*]] = llvm.extractvalue %[[V]][0]
// CHECK: %[[F1:.*]] = llvm.extractvalue %[[V]][1]
// CHECK: %[[F2:.*]] = llvm.extractvalue %[[V]][2]
// CHECK: llvm.call @f__par0(%[[B]], %[[E]], %[[F0]], %[[F1]], %[[F2]])
// CHECK: llvm.func @loom_parallel_for(!llvm.ptr, !llvm.ptr, i64)
module {
  llvm.func @f(%p: !llvm.ptr, %n: i64, %x: f32) {
    llvm.br ^bb1
  ^bb1:
    %c0 = llvm.mlir.constant(0 : i64) : i64
    llvm.call @f__par0(%c0, %n, %p, %n, %x) : (i64, i64, !llvm.ptr, i64, f32) -> ()
    llvm.return
  }
  llvm.func @f__par0(%b: i64, %e: i64, %p: !llvm.ptr, %n: i64, %x: f32) attributes {loom.parallel_body} {
    llvm.return
  }
}
