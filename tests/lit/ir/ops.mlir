// RUN: loom-opt %s | loom-opt | FileCheck %s
// Round trip: every op prints in a form that parses back to the same IR.

// CHECK-LABEL: func.func @cells
func.func @cells(%x: tensor<?x8xf32>, %h: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // CHECK: loom.param "rnn.weight_ih_l0" : tensor<64x8xf32>
  %wi = loom.param "rnn.weight_ih_l0" : tensor<64x8xf32>
  %wh = loom.param "rnn.weight_hh_l0" : tensor<64x16xf32>
  %b = loom.param "rnn.bias_ih_l0" : tensor<64xf32>
  // CHECK: loom.linear %{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<64x8xf32> -> tensor<?x64xf32>
  %a = loom.linear %x, %wi : tensor<?x8xf32>, tensor<64x8xf32> -> tensor<?x64xf32>
  %c = loom.linear %h, %wh : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
  // CHECK: loom.add {{.*}} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %ab = loom.add %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %g = loom.add %ab, %c : tensor<?x64xf32>, tensor<?x64xf32> -> tensor<?x64xf32>
  // CHECK: loom.split {{.*}} -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
  %i, %f, %gg, %o = loom.split %g : tensor<?x64xf32> -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
  // CHECK: loom.sigmoid
  %si = loom.sigmoid %i : tensor<?x16xf32>
  // CHECK: loom.tanh
  %tg = loom.tanh %gg : tensor<?x16xf32>
  // CHECK: loom.relu
  %r = loom.relu %f : tensor<?x16xf32>
  // CHECK: loom.exp
  %e = loom.exp %o : tensor<?x16xf32>
  // CHECK: loom.neg
  %n = loom.neg %e : tensor<?x16xf32>
  %one = arith.constant dense<1.0> : tensor<f32>
  // CHECK: loom.sub {{.*}} : tensor<f32>, tensor<?x16xf32> -> tensor<?x16xf32>
  %s = loom.sub %one, %si : tensor<f32>, tensor<?x16xf32> -> tensor<?x16xf32>
  // CHECK: loom.mul
  %m = loom.mul %s, %tg : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
  // CHECK: loom.div
  %d = loom.div %m, %r : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
  %sum = loom.add %d, %n : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
  return %sum : tensor<?x16xf32>
}

// CHECK-LABEL: func.func @layers
func.func @layers(%ids: tensor<?x?xi64>, %len: tensor<?xi64>, %h0: tensor<2x?x16xf32>) -> (tensor<?x?x10xf32>, tensor<2x?x16xf32>) {
  %emb = loom.param "encoder.weight" : tensor<100x8xf32>
  // CHECK: loom.embedding {{.*}} -> tensor<?x?x8xf32>
  %x = loom.embedding %ids, %emb : tensor<?x?xi64>, tensor<100x8xf32> -> tensor<?x?x8xf32>
  // CHECK: loom.dropout {{.*}} {p = 2.000000e-01 : f32} : tensor<?x?x8xf32>
  %xd = loom.dropout %x {p = 0.2 : f32} : tensor<?x?x8xf32>
  // CHECK: loom.transpose {{.*}} [1, 0, 2] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  %xt = loom.transpose %xd [1, 0, 2] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  // CHECK: loom.index {{.*}}[0] : tensor<2x?x16xf32> -> tensor<?x16xf32>
  %hf = loom.index %h0[0] : tensor<2x?x16xf32> -> tensor<?x16xf32>
  %hb = loom.index %h0[1] : tensor<2x?x16xf32> -> tensor<?x16xf32>
  %wi = loom.param "rnn.weight_ih_l0" : tensor<16x8xf32>
  %wh = loom.param "rnn.weight_hh_l0" : tensor<16x16xf32>
  // CHECK: loom.scan ins({{.*}} : tensor<?x?x8xf32>) init({{.*}} : tensor<?x16xf32>) lengths({{.*}} : tensor<?xi64>)
  // CHECK: loom.yield
  %ys, %hT = loom.scan ins(%xt : tensor<?x?x8xf32>) init(%hf : tensor<?x16xf32>) lengths(%len : tensor<?xi64>) {
  ^bb0(%xs: tensor<?x8xf32>, %h: tensor<?x16xf32>):
    %a = loom.linear %xs, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %b = loom.linear %h, %wh : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
    %s = loom.add %a, %b : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %h1 = loom.tanh %s : tensor<?x16xf32>
    loom.yield %h1, %h1 : tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x?x16xf32>, tensor<?x16xf32>
  // CHECK: loom.scan reverse ins
  %ys2, %hT2 = loom.scan reverse ins(%xt : tensor<?x?x8xf32>) init(%hb : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %h: tensor<?x16xf32>):
    %a = loom.linear %xs, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    loom.yield %a, %a : tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x?x16xf32>, tensor<?x16xf32>
  // CHECK: loom.stack {{.*}} -> tensor<2x?x16xf32>
  %hn = loom.stack %hT, %hT2 : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<2x?x16xf32>
  // CHECK: loom.concat {{.*}} -> tensor<?x?x32xf32>
  %y = loom.concat %ys, %ys2 : tensor<?x?x16xf32>, tensor<?x?x16xf32> -> tensor<?x?x32xf32>
  %lw = loom.param "norm.weight" : tensor<32xf32>
  %lb = loom.param "norm.bias" : tensor<32xf32>
  // CHECK: loom.layernorm
  %yn = loom.layernorm %y, %lw, %lb {epsilon = 1.0e-05 : f32} : tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32> -> tensor<?x?x32xf32>
  %dw = loom.param "decoder.weight" : tensor<10x32xf32>
  %logits = loom.linear %yn, %dw : tensor<?x?x32xf32>, tensor<10x32xf32> -> tensor<?x?x10xf32>
  // CHECK: loom.softmax
  %p = loom.softmax %logits : tensor<?x?x10xf32>
  // CHECK: loom.log_softmax
  %lp = loom.log_softmax %p : tensor<?x?x10xf32>
  %c1 = arith.constant 1 : index
  %bsz = tensor.dim %ids, %c1 : tensor<?x?xi64>
  // CHECK: loom.zeros {{.*}} : tensor<?x16xf32>
  %z = loom.zeros %bsz : tensor<?x16xf32>
  return %lp, %hn : tensor<?x?x10xf32>, tensor<2x?x16xf32>
}

// CHECK-LABEL: func.func @training_ops
func.func @training_ops(%logits: tensor<?x?x10xf32>, %t: tensor<?x?xi64>, %x: tensor<?x?x8xf32>, %len: tensor<?xi64>, %ids: tensor<?x?xi64>) -> tensor<f32> {
  // CHECK: loom.cross_entropy {{.*}} {ignore_index = 0 : i64} : tensor<?x?x10xf32>, tensor<?x?xi64> -> tensor<f32>
  %l = loom.cross_entropy %logits, %t {ignore_index = 0 : i64} : tensor<?x?x10xf32>, tensor<?x?xi64> -> tensor<f32>
  // CHECK: loom.cross_entropy_grad
  %g = loom.cross_entropy_grad %logits, %t, %l : tensor<?x?x10xf32>, tensor<?x?xi64>, tensor<f32> -> tensor<?x?x10xf32>
  // CHECK: loom.reduce_sum {{.*}} : tensor<?x?x10xf32> -> tensor<10xf32>
  %r = loom.reduce_sum %g : tensor<?x?x10xf32> -> tensor<10xf32>
  // CHECK: loom.linear_weight_grad {{.*}} -> tensor<10x8xf32>
  %w = loom.linear_weight_grad %g, %x : tensor<?x?x10xf32>, tensor<?x?x8xf32> -> tensor<10x8xf32>
  // CHECK: loom.embedding_grad {{.*}} -> tensor<50x8xf32>
  %e = loom.embedding_grad %ids, %x : tensor<?x?xi64>, tensor<?x?x8xf32> -> tensor<50x8xf32>
  // CHECK: loom.relu_grad {{.*}} : tensor<?x?x8xf32>
  %rg = loom.relu_grad %x, %x : tensor<?x?x8xf32>
  // CHECK: loom.zeros_like {{.*}} : tensor<?x?x8xf32>
  %z = loom.zeros_like %rg : tensor<?x?x8xf32>
  // CHECK: loom.slice {{.*}}[2] : tensor<?x?x8xf32> -> tensor<?x?x4xf32>
  %s = loom.slice %z[2] : tensor<?x?x8xf32> -> tensor<?x?x4xf32>
  // CHECK: loom.length_mask {{.*}} -> tensor<?x?xf32>
  %m = loom.length_mask %len, %x : tensor<?xi64>, tensor<?x?x8xf32> -> tensor<?x?xf32>
  %m0 = loom.index %m[0] : tensor<?x?xf32> -> tensor<?xf32>
  %x0 = loom.index %s[0] : tensor<?x?x4xf32> -> tensor<?x4xf32>
  // CHECK: loom.scale_rows {{.*}} : tensor<?x4xf32>, tensor<?xf32>
  %sc = loom.scale_rows %x0, %m0 : tensor<?x4xf32>, tensor<?xf32>
  return %l : tensor<f32>
}

// CHECK-LABEL: func.func @losses
func.func @losses(%logp: tensor<?x10xf32>, %t: tensor<?xi64>, %x: tensor<?x4xf32>) -> tensor<f32> {
  // CHECK: loom.nll {{.*}} : tensor<?x10xf32>, tensor<?xi64> -> tensor<f32>
  %n = loom.nll %logp, %t : tensor<?x10xf32>, tensor<?xi64> -> tensor<f32>
  // CHECK: loom.nll_grad
  %g = loom.nll_grad %logp, %t, %n {ignore_index = 1 : i64} : tensor<?x10xf32>, tensor<?xi64>, tensor<f32> -> tensor<?x10xf32>
  // CHECK: loom.mean {{.*}} : tensor<?x4xf32> -> tensor<f32>
  %m = loom.mean %x : tensor<?x4xf32> -> tensor<f32>
  // CHECK: loom.mean_grad {{.*}} : tensor<?x4xf32>, tensor<f32>
  %mg = loom.mean_grad %x, %m : tensor<?x4xf32>, tensor<f32>
  // CHECK: loom.row_sum {{.*}} : tensor<?x4xf32>
  %r = loom.row_sum %mg : tensor<?x4xf32>
  return %n : tensor<f32>
}

// CHECK-LABEL: func.func @rsqrt
func.func @rsqrt(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // CHECK: loom.rsqrt {{.*}} : tensor<?x4xf32>
  %r = loom.rsqrt %x : tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// Training: dropout with a [seed, step] key, and the ops of the optimizer
// update (sqrt, abs, sign, minimum).
// CHECK-LABEL: func.func @optimizer_ops
func.func @optimizer_ops(%x: tensor<?x4xf32>, %k: tensor<2xi64>, %s: tensor<f32>) -> tensor<?x4xf32> {
  // CHECK: loom.dropout %{{.*}} key(%{{.*}} : tensor<2xi64>) {p = 5.000000e-01 : f32, stream = 2 : i64} : tensor<?x4xf32>
  %d = loom.dropout %x key(%k : tensor<2xi64>) {p = 0.5 : f32, stream = 2 : i64} : tensor<?x4xf32>
  // CHECK: loom.sqrt {{.*}} : tensor<?x4xf32>
  %q = loom.sqrt %d : tensor<?x4xf32>
  // CHECK: loom.abs {{.*}} : tensor<?x4xf32>
  %a = loom.abs %q : tensor<?x4xf32>
  // CHECK: loom.sign {{.*}} : tensor<?x4xf32>
  %g = loom.sign %a : tensor<?x4xf32>
  // CHECK: loom.minimum {{.*}} : tensor<?x4xf32>, tensor<f32> -> tensor<?x4xf32>
  %m = loom.minimum %g, %s : tensor<?x4xf32>, tensor<f32> -> tensor<?x4xf32>
  return %m : tensor<?x4xf32>
}
