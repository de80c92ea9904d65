// RUN: loom-opt %s -loom-hoist-input-projection | FileCheck %s

// The input matmul of a tanh RNN step leaves the scan: one loom.linear over
// the whole [T, B, 8] sequence, its [T, B, 16] result a new scan input whose
// step slice replaces the matmul in the body. The recurrent matmul (of the
// state) stays, and the sequence, no longer read by the body, is dropped.
// CHECK-LABEL: func.func @rnn
// CHECK-SAME: (%[[XS:.*]]: tensor<?x?x8xf32>, %[[H0:.*]]: tensor<?x16xf32>)
// CHECK: %[[WI:.*]] = loom.param "rnn.weight_ih_l0"
// CHECK: %[[WH:.*]] = loom.param "rnn.weight_hh_l0"
// CHECK: %[[XW:.*]] = loom.linear %[[XS]], %[[WI]] : tensor<?x?x8xf32>, tensor<16x8xf32> -> tensor<?x?x16xf32>
// CHECK: loom.scan ins(%[[XW]] : tensor<?x?x16xf32>) init(%[[H0]] : tensor<?x16xf32>)
// CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<?x16xf32>, %[[H:.*]]: tensor<?x16xf32>):
// CHECK-NOT: loom.linear %{{.*}}, %[[WI]]
// CHECK: %[[B:.*]] = loom.linear %[[H]], %[[WH]]
// CHECK: loom.add %[[A]], %[[B]]
func.func @rnn(%xs: tensor<?x?x8xf32>, %h0: tensor<?x16xf32>) -> tensor<?x?x16xf32> {
  %wi = loom.param "rnn.weight_ih_l0" : tensor<16x8xf32>
  %wh = loom.param "rnn.weight_hh_l0" : tensor<16x16xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x16xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x16xf32>):
    %a = loom.linear %x, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %b = loom.linear %h, %wh : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
    %s = loom.add %a, %b : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %h1 = loom.tanh %s : tensor<?x16xf32>
    loom.yield %h1, %h1 : tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x?x16xf32>, tensor<?x16xf32>
  return %ys : tensor<?x?x16xf32>
}

// A matmul of a value computed inside the body, or by a weight computed
// inside the body, is not hoisted.
// CHECK-LABEL: func.func @not_hoisted
// CHECK: loom.scan ins(%{{.*}} : tensor<?x?x8xf32>)
// CHECK: loom.tanh
// CHECK: loom.linear
func.func @not_hoisted(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>) -> tensor<?x?x8xf32> {
  %w = loom.param "w" : tensor<8x8xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %t = loom.tanh %x : tensor<?x8xf32>
    %a = loom.linear %t, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    loom.yield %a, %a : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %ys : tensor<?x?x8xf32>
}
