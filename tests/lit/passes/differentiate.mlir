// RUN: loom-opt %s -split-input-file -loom-differentiate -verify-diagnostics | FileCheck %s

// A linear classifier: the loss's gradient flows through cross_entropy_grad
// into the weight (linear_weight_grad) and the bias (reduce_sum). Results
// are named after the parameters.
// CHECK-LABEL: func.func @M_grad
// CHECK-SAME: -> (tensor<f32> {loom.name = "loss"}, tensor<4x8xf32> {loom.name = "fc.weight"}, tensor<4xf32> {loom.name = "fc.bias"})
// CHECK-SAME: attributes {loom.grad}
// CHECK: %[[Y:.*]] = loom.linear
// CHECK: %[[Z:.*]] = loom.add %[[Y]]
// CHECK: %[[L:.*]] = loom.cross_entropy %[[Z]]
// CHECK: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[DZ:.*]] = loom.cross_entropy_grad %[[Z]], %{{.*}}, %[[ONE]] {ignore_index = 3 : i64}
// CHECK: %[[DB:.*]] = loom.reduce_sum %[[DZ]] : tensor<?x4xf32> -> tensor<4xf32>
// CHECK: %[[DW:.*]] = loom.linear_weight_grad %[[DZ]], %{{.*}} : tensor<?x4xf32>, tensor<?x8xf32> -> tensor<4x8xf32>
// CHECK: return %[[L]], %[[DW]], %[[DB]]
func.func @M_loss(%x: tensor<?x8xf32>, %t: tensor<?xi64>) -> tensor<f32> attributes {loom.loss} {
  %w = loom.param "fc.weight" : tensor<4x8xf32>
  %b = loom.param "fc.bias" : tensor<4xf32>
  %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
  %z = loom.add %y, %b : tensor<?x4xf32>, tensor<4xf32> -> tensor<?x4xf32>
  %l = loom.cross_entropy %z, %t {ignore_index = 3 : i64} : tensor<?x4xf32>, tensor<?xi64> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Tied uses of one parameter sum their gradients into one result; an
// unused parameter gets zeros.
// CHECK-LABEL: func.func @Tied_grad
// CHECK-SAME: -> (tensor<f32> {loom.name = "loss"}, tensor<5x3xf32> {loom.name = "enc.weight"}, tensor<2xf32> {loom.name = "unused"})
// CHECK-DAG: %[[E:.*]] = loom.embedding_grad
// CHECK-DAG: %[[W:.*]] = loom.linear_weight_grad
// CHECK: %[[SUM:.*]] = loom.add %{{.*}}, %{{.*}} : tensor<5x3xf32>, tensor<5x3xf32> -> tensor<5x3xf32>
// CHECK: %[[Z:.*]] = loom.zeros  : tensor<2xf32>
// CHECK: return %{{.*}}, %[[SUM]], %[[Z]]
func.func @Tied_loss(%ids: tensor<?xi64>, %t: tensor<?xi64>) -> tensor<f32> attributes {loom.loss} {
  %e = loom.param "enc.weight" : tensor<5x3xf32>
  %u = loom.param "unused" : tensor<2xf32>
  %x = loom.embedding %ids, %e : tensor<?xi64>, tensor<5x3xf32> -> tensor<?x3xf32>
  %e2 = loom.param "enc.weight" : tensor<5x3xf32>
  %y = loom.linear %x, %e2 : tensor<?x3xf32>, tensor<5x3xf32> -> tensor<?x5xf32>
  %l = loom.cross_entropy %y, %t : tensor<?x5xf32>, tensor<?xi64> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A scan with lengths: the forward scan also saves the state entering each
// step; the backward scan runs the other way over (inputs, saved states,
// output adjoints, length mask), recomputes the step, masks the adjoints
// (scale_rows) and carries the state adjoint and the weight's summed
// gradient.
// CHECK-LABEL: func.func @R_grad
// CHECK: %[[FWD:.*]]:3 = loom.scan ins(%[[XS:.*]] : tensor<?x?x2xf32>) init(%{{.*}} : tensor<?x3xf32>) lengths(%[[LEN:.*]] : tensor<?xi64>)
// CHECK: loom.yield %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x3xf32>
// CHECK: } : tensor<?x?x3xf32>, tensor<?x?x3xf32>, tensor<?x3xf32>
// CHECK: %[[MASK:.*]] = loom.length_mask %[[LEN]], %[[XS]] : tensor<?xi64>, tensor<?x?x2xf32> -> tensor<?x?xf32>
// CHECK: %[[BWD:.*]]:3 = loom.scan reverse ins(%[[XS]], %[[FWD]]#1, %{{.*}}, %[[MASK]] : {{.*}}) init(%{{.*}}, %{{.*}} : tensor<?x3xf32>, tensor<3x2xf32>)
// CHECK: loom.tanh
// CHECK: loom.scale_rows
// CHECK: loom.linear_weight_grad
// CHECK: loom.yield
// CHECK: return %{{.*}}, %[[BWD]]#2
func.func @R_loss(%xs: tensor<?x?x2xf32>, %len: tensor<?xi64>, %t: tensor<?x?xi64>) -> tensor<f32> attributes {loom.loss} {
  %c1 = arith.constant 1 : index
  %b = tensor.dim %xs, %c1 : tensor<?x?x2xf32>
  %h0 = loom.zeros %b : tensor<?x3xf32>
  %w = loom.param "rnn.weight_ih_l0" : tensor<3x2xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x2xf32>) init(%h0 : tensor<?x3xf32>) lengths(%len : tensor<?xi64>) {
  ^bb0(%x: tensor<?x2xf32>, %h: tensor<?x3xf32>):
    %a = loom.linear %x, %w : tensor<?x2xf32>, tensor<3x2xf32> -> tensor<?x3xf32>
    %s = loom.add %a, %h : tensor<?x3xf32>, tensor<?x3xf32> -> tensor<?x3xf32>
    %h1 = loom.tanh %s : tensor<?x3xf32>
    loom.yield %h1, %h1 : tensor<?x3xf32>, tensor<?x3xf32>
  } : tensor<?x?x3xf32>, tensor<?x3xf32>
  %l = loom.cross_entropy %ys, %t : tensor<?x?x3xf32>, tensor<?x?xi64> -> tensor<f32>
  return %l : tensor<f32>
}

// -----

func.func @NoRule_loss(%x: tensor<?x8xf32>, %t: tensor<?xi64>) -> tensor<f32> attributes {loom.loss} {
  %w = loom.param "n.weight" : tensor<8xf32>
  %z = loom.add %x, %w : tensor<?x8xf32>, tensor<8xf32> -> tensor<?x8xf32>
  // expected-error @+1 {{'loom.row_sum' op has no differentiation rule yet}}
  %y = loom.row_sum %z : tensor<?x8xf32>
  %l = loom.cross_entropy %y, %t : tensor<?x8xf32>, tensor<?xi64> -> tensor<f32>
  return %l : tensor<f32>
}
