// RUN: loom-opt %s -loom-params-to-args | FileCheck %s

// Each distinct parameter becomes one trailing argument named by an
// attribute; tied uses (the same name twice) share it.
// CHECK-LABEL: func.func @M
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>, %[[W:.*]]: tensor<4x8xf32> {loom.param = "fc.weight"}, %[[B:.*]]: tensor<4xf32> {loom.param = "fc.bias"})
// CHECK-NOT: loom.param "
// CHECK: loom.linear %[[X]], %[[W]]
// CHECK: loom.add %{{.*}}, %[[B]]
// CHECK: loom.linear %{{.*}}, %[[W]]
func.func @M(%x: tensor<?x8xf32>) -> tensor<?x4xf32> attributes {loom.model} {
  %w = loom.param "fc.weight" : tensor<4x8xf32>
  %b = loom.param "fc.bias" : tensor<4xf32>
  %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
  %z = loom.add %y, %b : tensor<?x4xf32>, tensor<4xf32> -> tensor<?x4xf32>
  %w2 = loom.param "fc.weight" : tensor<4x8xf32>
  %u = loom.linear %x, %w2 : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
  %r = loom.add %z, %u : tensor<?x4xf32>, tensor<?x4xf32> -> tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// Functions that are not models are left alone.
// CHECK-LABEL: func.func @helper()
// CHECK: loom.param "p"
func.func @helper() -> tensor<4xf32> {
  %p = loom.param "p" : tensor<4xf32>
  return %p : tensor<4xf32>
}
