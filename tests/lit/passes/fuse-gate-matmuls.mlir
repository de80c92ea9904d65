// RUN: loom-opt %s -loom-fuse-gate-matmuls | FileCheck %s
// RUN: loom-opt %s -loom-fuse-gate-matmuls -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK
// RUN: loom-opt %s -loom-fuse-gate-matmuls -loom-hoist-input-projection | FileCheck %s --check-prefix=HOIST

// An LSTM written per gate: four matmuls of the step input by Wi, Wf, Wg,
// Wo and four of the state by Ui, Uf, Ug, Uo become one matmul of each by
// the weights concatenated along the output dimension (before the scan,
// from the parameters only), split back into the gates.
// CHECK-LABEL: func.func @lstm
// CHECK-DAG: %[[WI:.*]] = loom.param "rnn.Wi_l0"
// CHECK-DAG: %[[WF:.*]] = loom.param "rnn.Wf_l0"
// CHECK-DAG: %[[WG:.*]] = loom.param "rnn.Wg_l0"
// CHECK-DAG: %[[WO:.*]] = loom.param "rnn.Wo_l0"
// CHECK-DAG: %[[UI:.*]] = loom.param "rnn.Ui_l0"
// CHECK: %[[TI:.*]] = loom.transpose %[[WI]] [1, 0] : tensor<16x8xf32> -> tensor<8x16xf32>
// CHECK: %[[TF:.*]] = loom.transpose %[[WF]] [1, 0]
// CHECK: %[[TG:.*]] = loom.transpose %[[WG]] [1, 0]
// CHECK: %[[TO:.*]] = loom.transpose %[[WO]] [1, 0]
// CHECK: %[[CW:.*]] = loom.concat %[[TI]], %[[TF]], %[[TG]], %[[TO]] : {{.*}} -> tensor<8x64xf32>
// CHECK: %[[W:.*]] = loom.transpose %[[CW]] [1, 0] : tensor<8x64xf32> -> tensor<64x8xf32>
// CHECK: %[[TUI:.*]] = loom.transpose %[[UI]] [1, 0]
// CHECK: %[[CU:.*]] = loom.concat %[[TUI]], {{.*}} -> tensor<16x64xf32>
// CHECK: %[[U:.*]] = loom.transpose %[[CU]] [1, 0] : tensor<16x64xf32> -> tensor<64x16xf32>
// CHECK: loom.scan
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<?x8xf32>, %[[H:.*]]: tensor<?x16xf32>, %[[C:.*]]: tensor<?x16xf32>):
// CHECK-NEXT: %[[XW:.*]] = loom.linear %[[X]], %[[W]] : tensor<?x8xf32>, tensor<64x8xf32> -> tensor<?x64xf32>
// CHECK-NEXT: %[[XS:.*]]:4 = loom.split %[[XW]] : tensor<?x64xf32> -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
// CHECK-NEXT: %[[HU:.*]] = loom.linear %[[H]], %[[U]] : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
// CHECK-NEXT: %[[HS:.*]]:4 = loom.split %[[HU]]
// CHECK-NOT: loom.linear
// CHECK: loom.add %[[XS]]#0, %[[HS]]#0
// CHECK: loom.add %[[XS]]#1, %[[HS]]#1
// CHECK: loom.add %[[XS]]#2, %[[HS]]#2
// CHECK: loom.add %[[XS]]#3, %[[HS]]#3
// CHECK: loom.yield
// REMARK: fuse-gate-matmuls.mlir:[[@LINE+23]]:11: remark: fused 4 matmuls sharing an operand into one 'tensor<?x64xf32>' matmul over their concatenated weights (loom-fuse-gate-matmuls)
// REMARK: fuse-gate-matmuls.mlir:[[@LINE+23]]:11: remark: fused 4 matmuls sharing an operand into one 'tensor<?x64xf32>' matmul over their concatenated weights (loom-fuse-gate-matmuls)
// With hoisting after it, the fused input matmul leaves the time loop as
// one matmul over every step, and one matmul (of the state) stays per step.
// HOIST-LABEL: func.func @lstm
// HOIST: %[[XW:.*]] = loom.linear %{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<64x8xf32> -> tensor<?x?x64xf32>
// HOIST: loom.scan ins(%[[XW]] : tensor<?x?x64xf32>)
// HOIST-NEXT: ^bb0(%[[A:.*]]: tensor<?x64xf32>, %[[H:.*]]: tensor<?x16xf32>, %{{.*}}: tensor<?x16xf32>):
// HOIST-NEXT: loom.split %[[A]]
// HOIST-NEXT: loom.linear %[[H]], %{{.*}} : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
// HOIST-NOT: loom.linear
// HOIST: loom.yield
func.func @lstm(%xs: tensor<?x?x8xf32>, %h0: tensor<?x16xf32>, %c0: tensor<?x16xf32>) -> tensor<?x?x16xf32> {
  %wi = loom.param "rnn.Wi_l0" : tensor<16x8xf32>
  %wf = loom.param "rnn.Wf_l0" : tensor<16x8xf32>
  %wg = loom.param "rnn.Wg_l0" : tensor<16x8xf32>
  %wo = loom.param "rnn.Wo_l0" : tensor<16x8xf32>
  %ui = loom.param "rnn.Ui_l0" : tensor<16x16xf32>
  %uf = loom.param "rnn.Uf_l0" : tensor<16x16xf32>
  %ug = loom.param "rnn.Ug_l0" : tensor<16x16xf32>
  %uo = loom.param "rnn.Uo_l0" : tensor<16x16xf32>
  %ys, %hT, %cT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0, %c0 : tensor<?x16xf32>, tensor<?x16xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x16xf32>, %c: tensor<?x16xf32>):
    %xi = loom.linear %x, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %hi = loom.linear %h, %ui : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
    %si = loom.add %xi, %hi : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %i = loom.sigmoid %si : tensor<?x16xf32>
    %xf = loom.linear %x, %wf : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %hf = loom.linear %h, %uf : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
    %sf = loom.add %xf, %hf : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %f = loom.sigmoid %sf : tensor<?x16xf32>
    %xg = loom.linear %x, %wg : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %hg = loom.linear %h, %ug : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
    %sg = loom.add %xg, %hg : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %g = loom.tanh %sg : tensor<?x16xf32>
    %xo = loom.linear %x, %wo : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %ho = loom.linear %h, %uo : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
    %so = loom.add %xo, %ho : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %o = loom.sigmoid %so : tensor<?x16xf32>
    %fc = loom.mul %f, %c : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %ig = loom.mul %i, %g : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %c1 = loom.add %fc, %ig : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %tc = loom.tanh %c1 : tensor<?x16xf32>
    %h1 = loom.mul %o, %tc : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    loom.yield %h1, %h1, %c1 : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
  return %ys : tensor<?x?x16xf32>
}

// Matmuls of different operands (the input and the state) are not fused.
// CHECK-LABEL: func.func @different_operands
// CHECK-NOT: loom.concat
// CHECK: loom.linear %{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
// CHECK: loom.linear %{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
// CHECK-NOT: loom.split
// CHECK: loom.yield
func.func @different_operands(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>) -> tensor<?x?x8xf32> {
  %w = loom.param "w" : tensor<8x8xf32>
  %u = loom.param "u" : tensor<8x8xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %a = loom.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %b = loom.linear %h, %u : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %s = loom.add %a, %b : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    %h1 = loom.tanh %s : tensor<?x8xf32>
    loom.yield %h1, %h1 : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %ys : tensor<?x?x8xf32>
}

// Weights computed inside the body change per step (as far as the pass
// knows): their matmuls are not fused.
// CHECK-LABEL: func.func @weight_in_body
// CHECK-NOT: loom.concat
// CHECK: loom.scan
// CHECK: loom.linear
// CHECK: loom.linear
// CHECK-NOT: loom.split
// CHECK: loom.yield
func.func @weight_in_body(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>) -> tensor<?x?x8xf32> {
  %w = loom.param "w" : tensor<8x8xf32>
  %u = loom.param "u" : tensor<8x8xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %wt = loom.tanh %w : tensor<8x8xf32>
    %ut = loom.tanh %u : tensor<8x8xf32>
    %a = loom.linear %x, %wt : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %b = loom.linear %x, %ut : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %s = loom.add %a, %b : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    %h1 = loom.add %s, %h : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    loom.yield %h1, %h1 : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %ys : tensor<?x?x8xf32>
}

// A single matmul is left alone.
// CHECK-LABEL: func.func @single
// CHECK-NOT: loom.concat
// CHECK: loom.linear
// CHECK-NOT: loom.split
// CHECK: loom.yield
func.func @single(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>) -> tensor<?x?x8xf32> {
  %w = loom.param "w" : tensor<8x8xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %a = loom.linear %x, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %h1 = loom.add %a, %h : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    loom.yield %h1, %h1 : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %ys : tensor<?x?x8xf32>
}

// Outputs of different sizes (4 and 8) are split at their gcd and joined
// back; a weight used twice on the same operand is concatenated once and
// both of its matmuls take the same part.
// CHECK-LABEL: func.func @unequal_and_repeated
// CHECK: %[[TW:.*]] = loom.transpose %{{.*}} [1, 0] : tensor<4x8xf32> -> tensor<8x4xf32>
// CHECK: %[[TV:.*]] = loom.transpose %{{.*}} [1, 0] : tensor<8x8xf32> -> tensor<8x8xf32>
// CHECK: %[[CAT:.*]] = loom.concat %[[TW]], %[[TV]] : tensor<8x4xf32>, tensor<8x8xf32> -> tensor<8x12xf32>
// CHECK: %[[WV:.*]] = loom.transpose %[[CAT]] [1, 0] : tensor<8x12xf32> -> tensor<12x8xf32>
// CHECK: loom.scan
// CHECK: %[[Y:.*]] = loom.linear %{{.*}}, %[[WV]] : tensor<?x8xf32>, tensor<12x8xf32> -> tensor<?x12xf32>
// CHECK-NEXT: %[[P:.*]]:3 = loom.split %[[Y]] : tensor<?x12xf32> -> tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4xf32>
// CHECK-NEXT: %[[B:.*]] = loom.concat %[[P]]#1, %[[P]]#2 : tensor<?x4xf32>, tensor<?x4xf32> -> tensor<?x8xf32>
// CHECK-NEXT: %[[AA:.*]] = loom.add %[[P]]#0, %[[P]]#0
// CHECK-NEXT: loom.concat %[[AA]], %[[B]]
// CHECK-NOT: loom.linear
// CHECK: loom.yield
// REMARK: fuse-gate-matmuls.mlir:[[@LINE+7]]:10: remark: fused 3 matmuls sharing an operand into one 'tensor<?x12xf32>' matmul over their concatenated weights (loom-fuse-gate-matmuls)
// REMARK-NOT: remark
func.func @unequal_and_repeated(%xs: tensor<?x?x8xf32>, %h0: tensor<?x12xf32>) -> tensor<?x?x12xf32> {
  %w = loom.param "w" : tensor<4x8xf32>
  %v = loom.param "v" : tensor<8x8xf32>
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x12xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x12xf32>):
    %a = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
    %b = loom.linear %x, %v : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %a2 = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
    %aa = loom.add %a, %a2 : tensor<?x4xf32>, tensor<?x4xf32> -> tensor<?x4xf32>
    %c = loom.concat %aa, %b : tensor<?x4xf32>, tensor<?x8xf32> -> tensor<?x12xf32>
    %h1 = loom.add %c, %h : tensor<?x12xf32>, tensor<?x12xf32> -> tensor<?x12xf32>
    loom.yield %h1, %h1 : tensor<?x12xf32>, tensor<?x12xf32>
  } : tensor<?x?x12xf32>, tensor<?x12xf32>
  return %ys : tensor<?x?x12xf32>
}
