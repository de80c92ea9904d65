// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-collapse-contraction-dims))' -verify-diagnostics | FileCheck %s

// The hoisted input projection y[t, b, o] = Σ_i x[t, b, i] · w[i, o]: t and
// b are consecutive parallel loops that x and y index contiguously and in
// order, so they fold into one row dimension of T·B rows.
#x = affine_map<(t, b, i, o) -> (t, b, i)>
#w = affine_map<(t, b, i, o) -> (i, o)>
#y = affine_map<(t, b, i, o) -> (t, b, o)>
// CHECK-DAG: #[[A:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[B:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[C:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func.func @projection
// CHECK: %[[X:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2]] : tensor<?x?x8xf32> into tensor<?x8xf32>
// CHECK: %[[Y0:.*]] = tensor.collapse_shape %arg2 {{\[}}[0, 1], [2]] : tensor<?x?x20xf32> into tensor<?x20xf32>
// CHECK: %[[Y:.*]] = linalg.generic {indexing_maps = [#[[A]], #[[B]], #[[C]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]], %arg1 : tensor<?x8xf32>, tensor<8x20xf32>) outs(%[[Y0]] : tensor<?x20xf32>)
// CHECK: tensor.expand_shape %[[Y]] {{\[}}[0, 1], [2]] output_shape [%{{.*}}, %{{.*}}, 20] : tensor<?x20xf32> into tensor<?x?x20xf32>
func.func @projection(%x: tensor<?x?x8xf32>, %w: tensor<8x20xf32>, %y: tensor<?x?x20xf32>) -> tensor<?x?x20xf32> {
  // expected-remark@+1 {{matmul dimensions folded: 4 loops become 3 (loom-collapse-contraction-dims)}}
  %r = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<8x20xf32>) outs(%y : tensor<?x?x20xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x?x20xf32>
  return %r : tensor<?x?x20xf32>
}

// -----

// A weight gradient dW[o, i] = Σ_{t,b} dy[t, b, o] · x[t, b, i]: the two
// reductions fold into one of length T·B.
#dy = affine_map<(t, b, o, i) -> (t, b, o)>
#xx = affine_map<(t, b, o, i) -> (t, b, i)>
#dw = affine_map<(t, b, o, i) -> (o, i)>
// CHECK-LABEL: func.func @weight_grad
// CHECK: tensor.collapse_shape %arg0 {{\[}}[0, 1], [2]] : tensor<?x?x20xf32> into tensor<?x20xf32>
// CHECK: tensor.collapse_shape %arg1 {{\[}}[0, 1], [2]] : tensor<?x?x8xf32> into tensor<?x8xf32>
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel", "parallel"]} ins(%{{.*}}, %{{.*}} : tensor<?x20xf32>, tensor<?x8xf32>) outs(%arg2 : tensor<20x8xf32>)
// CHECK-NOT: tensor.expand_shape
func.func @weight_grad(%dy: tensor<?x?x20xf32>, %x: tensor<?x?x8xf32>, %dw: tensor<20x8xf32>) -> tensor<20x8xf32> {
  // expected-remark@+1 {{matmul dimensions folded: 4 loops become 3 (loom-collapse-contraction-dims)}}
  %r = linalg.generic {indexing_maps = [#dy, #xx, #dw], iterator_types = ["reduction", "reduction", "parallel", "parallel"]}
      ins(%dy, %x : tensor<?x?x20xf32>, tensor<?x?x8xf32>) outs(%dw : tensor<20x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  } -> tensor<20x8xf32>
  return %r : tensor<20x8xf32>
}

// -----

// A plain [B, H] × [H, G] matmul has nothing to fold; a batched one whose
// B operand is indexed by the batch (x[b, m, k] · w[b, k, n]) cannot fold
// b with m, as w does not use m: both are left alone.
#a2 = affine_map<(m, k, n) -> (m, k)>
#b2 = affine_map<(m, k, n) -> (k, n)>
#c2 = affine_map<(m, k, n) -> (m, n)>
#a3 = affine_map<(b, m, k, n) -> (b, m, k)>
#b3 = affine_map<(b, m, k, n) -> (b, k, n)>
#c3 = affine_map<(b, m, k, n) -> (b, m, n)>
// CHECK-LABEL: func.func @unchanged
// CHECK-NOT: collapse_shape
// CHECK: iterator_types = ["parallel", "reduction", "parallel"]
// CHECK: iterator_types = ["parallel", "parallel", "reduction", "parallel"]
func.func @unchanged(%x: tensor<?x8xf32>, %w: tensor<8x20xf32>, %y: tensor<?x20xf32>,
                     %x3: tensor<4x?x8xf32>, %w3: tensor<4x8x20xf32>, %y3: tensor<4x?x20xf32>) -> (tensor<?x20xf32>, tensor<4x?x20xf32>) {
  %r = linalg.generic {indexing_maps = [#a2, #b2, #c2], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : tensor<?x8xf32>, tensor<8x20xf32>) outs(%y : tensor<?x20xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  } -> tensor<?x20xf32>
  %r3 = linalg.generic {indexing_maps = [#a3, #b3, #c3], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x3, %w3 : tensor<4x?x8xf32>, tensor<4x8x20xf32>) outs(%y3 : tensor<4x?x20xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  } -> tensor<4x?x20xf32>
  return %r, %r3 : tensor<?x20xf32>, tensor<4x?x20xf32>
}
