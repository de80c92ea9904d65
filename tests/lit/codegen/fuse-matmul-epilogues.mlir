// RUN: loom-opt %s --pass-pipeline='builtin.module(func.func(loom-fuse-matmul-epilogues))' | FileCheck %s

#a = affine_map<(m, k, n) -> (m, k)>
#b = affine_map<(m, k, n) -> (k, n)>
#c = affine_map<(m, k, n) -> (m, n)>
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (j)>

// Two gates: the bias add over the whole result is computed per slice,
// then both gates and their product are one marked op.
// CHECK-LABEL: func.func @gates
// CHECK: %[[M:.*]] = linalg.generic {{.*}}"reduction"
// CHECK-DAG: %[[G0:.*]] = tensor.extract_slice %[[M]][0, 0] [4, 8] [1, 1]
// CHECK-DAG: %[[G1:.*]] = tensor.extract_slice %[[M]][0, 8] [4, 8] [1, 1]
// CHECK-DAG: tensor.extract_slice %{{.*}}[0] [8] [1] : tensor<16xf32> to tensor<8xf32>
// CHECK-DAG: tensor.extract_slice %{{.*}}[8] [8] [1] : tensor<16xf32> to tensor<8xf32>
// CHECK: %[[E:.*]] = linalg.generic
// CHECK-SAME: attrs = {loom.epilogue}
// CHECK: arith.addf
// CHECK: arith.addf
// CHECK: math.tanh
// CHECK: arith.mulf
// CHECK: } -> tensor<4x8xf32>
// CHECK-NOT: linalg.generic
// CHECK: return %[[E]]
func.func @gates(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>,
                 %bias: tensor<16xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]} ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%f : tensor<4x16xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %0 = arith.mulf %p, %q : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  } -> tensor<4x16xf32>
  %s = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%m, %bias : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %0 = arith.addf %p, %q : f32
    linalg.yield %0 : f32
  } -> tensor<4x16xf32>
  %s0 = tensor.extract_slice %s[0, 0] [4, 8] [1, 1] : tensor<4x16xf32> to tensor<4x8xf32>
  %s1 = tensor.extract_slice %s[0, 8] [4, 8] [1, 1] : tensor<4x16xf32> to tensor<4x8xf32>
  %e2 = tensor.empty() : tensor<4x8xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%s0 : tensor<4x8xf32>) outs(%e2 : tensor<4x8xf32>) {
  ^bb0(%p: f32, %o: f32):
    %0 = math.tanh %p : f32
    linalg.yield %0 : f32
  } -> tensor<4x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%t, %s1 : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e2 : tensor<4x8xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %0 = arith.mulf %p, %q : f32
    linalg.yield %0 : f32
  } -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// The matmul's result is also returned: no epilogue (it must reach memory).
// CHECK-LABEL: func.func @used_twice
// CHECK-NOT: loom.epilogue
// CHECK: return
func.func @used_twice(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>)
    -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel"]} ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%f : tensor<4x16xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %0 = arith.mulf %p, %q : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  } -> tensor<4x16xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%m : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %0 = math.tanh %p : f32
    linalg.yield %0 : f32
  } -> tensor<4x16xf32>
  return %m, %t : tensor<4x16xf32>, tensor<4x16xf32>
}
