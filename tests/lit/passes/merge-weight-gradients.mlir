// RUN: loom-opt %s -split-input-file -loom-merge-weight-gradients -verify-diagnostics | FileCheck %s

// A backward scan accumulating a recurrent weight's gradient in a state
// (%gw + linear_weight_grad(%t, %h) every step): the state now passes
// through; the scan outputs the step value %t stacked over time, and one
// linear_weight_grad over every step of %ts and of the input sequence %hs
// (which already holds %h) is added to the initial value after the scan.
// CHECK-LABEL: func.func @bwd
// CHECK-SAME: (%[[DYS:.*]]: tensor<?x?x6xf32>, %[[HS:.*]]: tensor<?x?x4xf32>, %[[G0:.*]]: tensor<6x4xf32>, %[[D0:.*]]: tensor<?x4xf32>, %[[W:.*]]: tensor<4x6xf32>)
// CHECK: %[[R:.*]]:3 = loom.scan reverse ins(%[[DYS]], %[[HS]] : tensor<?x?x6xf32>, tensor<?x?x4xf32>) init(%[[D0]], %[[G0]] : tensor<?x4xf32>, tensor<6x4xf32>) {
// CHECK: ^bb0(%[[DY:.*]]: tensor<?x6xf32>, %[[H:.*]]: tensor<?x4xf32>, %[[D:.*]]: tensor<?x4xf32>, %[[GW:.*]]: tensor<6x4xf32>):
// CHECK: %[[T:.*]] = loom.tanh %[[DY]]
// CHECK-NOT: linear_weight_grad
// CHECK: %[[DN:.*]] = loom.linear %[[T]], %[[W]]
// CHECK: loom.yield %[[T]], %[[DN]], %[[GW]] : tensor<?x6xf32>, tensor<?x4xf32>, tensor<6x4xf32>
// CHECK: } : tensor<?x?x6xf32>, tensor<?x4xf32>, tensor<6x4xf32>
// CHECK: %[[ALL:.*]] = loom.linear_weight_grad %[[R]]#0, %[[HS]] : tensor<?x?x6xf32>, tensor<?x?x4xf32> -> tensor<6x4xf32>
// CHECK: %[[SUM:.*]] = loom.add %[[G0]], %[[ALL]]
// CHECK: return %[[SUM]], %[[R]]#1
func.func @bwd(%dys: tensor<?x?x6xf32>, %hs: tensor<?x?x4xf32>, %g0: tensor<6x4xf32>, %d0: tensor<?x4xf32>, %w: tensor<4x6xf32>) -> (tensor<6x4xf32>, tensor<?x4xf32>) {
  %r:2 = loom.scan reverse ins(%dys, %hs : tensor<?x?x6xf32>, tensor<?x?x4xf32>) init(%d0, %g0 : tensor<?x4xf32>, tensor<6x4xf32>) {
  ^bb0(%dy: tensor<?x6xf32>, %h: tensor<?x4xf32>, %d: tensor<?x4xf32>, %gw: tensor<6x4xf32>):
    %t = loom.tanh %dy : tensor<?x6xf32>
    // expected-remark@+1 {{per-step weight gradient 'tensor<6x4xf32>' merged into one matmul over all steps after the scan (loom-merge-weight-gradients)}}
    %g = loom.linear_weight_grad %t, %h : tensor<?x6xf32>, tensor<?x4xf32> -> tensor<6x4xf32>
    %gw1 = loom.add %gw, %g : tensor<6x4xf32>, tensor<6x4xf32> -> tensor<6x4xf32>
    %dn = loom.linear %t, %w : tensor<?x6xf32>, tensor<4x6xf32> -> tensor<?x4xf32>
    loom.yield %dn, %gw1 : tensor<?x4xf32>, tensor<6x4xf32>
  } : tensor<?x4xf32>, tensor<6x4xf32>
  return %r#1, %r#0 : tensor<6x4xf32>, tensor<?x4xf32>
}

// -----

// Left alone: with lengths, a term whose factors are both input slices
// (inactive steps would still contribute); and an accumulator the step
// also reads for something else.
// CHECK-LABEL: func.func @unchanged
// CHECK: loom.scan
// CHECK: loom.linear_weight_grad %{{.*}}, %{{.*}} : tensor<?x6xf32>, tensor<?x4xf32>
// CHECK: loom.scan
// CHECK: loom.linear_weight_grad %{{.*}}, %{{.*}} : tensor<?x6xf32>, tensor<?x4xf32>
func.func @unchanged(%dys: tensor<?x?x6xf32>, %hs: tensor<?x?x4xf32>, %g0: tensor<6x4xf32>, %len: tensor<?xi64>) -> (tensor<6x4xf32>, tensor<?x?x6xf32>) {
  %a = loom.scan ins(%dys, %hs : tensor<?x?x6xf32>, tensor<?x?x4xf32>) init(%g0 : tensor<6x4xf32>) lengths(%len : tensor<?xi64>) {
  ^bb0(%dy: tensor<?x6xf32>, %h: tensor<?x4xf32>, %gw: tensor<6x4xf32>):
    %g = loom.linear_weight_grad %dy, %h : tensor<?x6xf32>, tensor<?x4xf32> -> tensor<6x4xf32>
    %gw1 = loom.add %gw, %g : tensor<6x4xf32>, tensor<6x4xf32> -> tensor<6x4xf32>
    loom.yield %gw1 : tensor<6x4xf32>
  } : tensor<6x4xf32>
  %b:2 = loom.scan ins(%dys, %hs : tensor<?x?x6xf32>, tensor<?x?x4xf32>) init(%a : tensor<6x4xf32>) {
  ^bb0(%dy: tensor<?x6xf32>, %h: tensor<?x4xf32>, %gw: tensor<6x4xf32>):
    %g = loom.linear_weight_grad %dy, %h : tensor<?x6xf32>, tensor<?x4xf32> -> tensor<6x4xf32>
    %gw1 = loom.add %gw, %g : tensor<6x4xf32>, tensor<6x4xf32> -> tensor<6x4xf32>
    %y = loom.linear %h, %gw : tensor<?x4xf32>, tensor<6x4xf32> -> tensor<?x6xf32>
    loom.yield %y, %gw1 : tensor<?x6xf32>, tensor<6x4xf32>
  } : tensor<?x?x6xf32>, tensor<6x4xf32>
  return %b#1, %b#0 : tensor<6x4xf32>, tensor<?x?x6xf32>
}
