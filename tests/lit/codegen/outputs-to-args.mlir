// RUN: loom-opt %s -loom-outputs-to-args | FileCheck %s

// Results become caller-owned memref arguments that the values are
// materialized into; the function then returns nothing and gets a C
// interface for the JIT.
// CHECK-LABEL: func.func @M
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[O1:.*]]: memref<?x8xf32> {loom.output = "y"}, %[[O2:.*]]: memref<2x8xf32> {loom.output = "z"})
// CHECK-SAME: attributes {llvm.emit_c_interface, loom.model}
// CHECK: bufferization.materialize_in_destination %[[X]] in restrict writable %[[O1]]
// CHECK: bufferization.materialize_in_destination %{{.*}} in restrict writable %[[O2]]
// CHECK: return{{$}}
func.func @M(%x: tensor<?x8xf32>) -> (tensor<?x8xf32> {loom.name = "y"}, tensor<2x8xf32> {loom.name = "z"}) attributes {loom.model} {
  %z = arith.constant dense<1.0> : tensor<2x8xf32>
  return %x, %z : tensor<?x8xf32>, tensor<2x8xf32>
}
