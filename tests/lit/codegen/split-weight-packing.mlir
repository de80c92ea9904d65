// RUN: loom-opt %s -pass-pipeline='builtin.module(loom-params-to-args,func.func(convert-loom-to-linalg,canonicalize),loom-split-weight-packing)' | FileCheck %s

// The transposed weight the matmul reads depends only on a parameter: it is
// computed by @M__pack when the weights are set, and @M takes it as an
// argument (loom.packed = 0) instead of transposing on every call. The bias,
// used as it is, stays a plain parameter.
// CHECK-LABEL: func.func @M(
// CHECK-SAME: %[[X:.*]]: tensor<?x?x8xf32> {loom.name = "x"}, %[[W:.*]]: tensor<4x8xf32> {loom.param = "fc.weight"}, %[[B:.*]]: tensor<4xf32> {loom.param = "fc.bias"}, %[[WT:.*]]: tensor<8x4xf32> {loom.packed = 0 : i64})
// CHECK-NOT: linalg.transpose
// CHECK: linalg.generic {{.*}} ins(%[[X]], %[[WT]] : tensor<?x?x8xf32>, tensor<8x4xf32>)
// CHECK: ins(%{{.*}}, %[[B]] :
// CHECK-LABEL: func.func @M__pack(
// CHECK-SAME: %[[P:.*]]: tensor<4x8xf32> {loom.param = "fc.weight"}) -> (tensor<8x4xf32> {loom.name = "packed.0"}) attributes {loom.pack}
// CHECK: %[[T:.*]] = linalg.transpose ins(%[[P]] : tensor<4x8xf32>) {{.*}} permutation = [1, 0]
// CHECK: return %[[T]]
func.func @M(%x: tensor<?x?x8xf32> {loom.name = "x"}) -> (tensor<?x?x4xf32> {loom.name = "y"}) attributes {loom.model} {
  %w = loom.param "fc.weight" : tensor<4x8xf32>
  %b = loom.param "fc.bias" : tensor<4xf32>
  %y = loom.linear %x, %w : tensor<?x?x8xf32>, tensor<4x8xf32> -> tensor<?x?x4xf32>
  %z = loom.add %y, %b : tensor<?x?x4xf32>, tensor<4xf32> -> tensor<?x?x4xf32>
  return %z : tensor<?x?x4xf32>
}
