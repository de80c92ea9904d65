// RUN: loom-opt %s -split-input-file -convert-loom-to-linalg | FileCheck %s

// A reverse scan with lengths: an scf.for over time whose iteration
// arguments are the state and the stacked output; the step reads slice
// T-1-i, and lengths select between the new and the old state (and zero).
// The weight is transposed once, before the loop.
// CHECK-LABEL: func.func @scan
// CHECK-SAME: (%[[XS:.*]]: tensor<?x?x8xf32>, %[[H0:.*]]: tensor<?x16xf32>, %[[LEN:.*]]: tensor<?xi64>, %[[W:.*]]: tensor<16x8xf32>)
// CHECK: %[[WT:.*]] = linalg.transpose ins(%[[W]] : tensor<16x8xf32>) {{.*}} permutation = [1, 0]
// CHECK: %[[T:.*]] = tensor.dim %[[XS]], %c0
// CHECK: %[[R:.*]]:2 = scf.for %[[I:.*]] = %c0 to %[[T]] step %c1 iter_args(%[[H:.*]] = %[[H0]], %[[ACC:.*]] = %{{.*}})
// CHECK:   %[[LAST:.*]] = arith.subi %[[T]], %c1
// CHECK:   %[[TT:.*]] = arith.subi %[[LAST]], %[[I]]
// CHECK:   %[[X:.*]] = tensor.extract_slice %[[XS]][%[[TT]], 0, 0] [1, %{{.*}}, 8] [1, 1, 1]
// CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]], %[[WT]] :
// CHECK:     arith.mulf {{.*}} fastmath<contract>
// CHECK:     arith.addf {{.*}} fastmath<contract>
// CHECK:   math.tanh
// CHECK:   %[[NEWH:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %[[LEN]], %[[H]] :
// CHECK:     arith.cmpi slt
// CHECK:     arith.select
// CHECK:   %[[OUT:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %[[LEN]] :
// CHECK:   %[[INS:.*]] = tensor.insert_slice %[[OUT]] into %[[ACC]][%[[TT]], 0, 0]
// CHECK:   scf.yield %[[NEWH]], %[[INS]]
// CHECK: return %[[R]]#1, %[[R]]#0
func.func @scan(%xs: tensor<?x?x8xf32>, %h0: tensor<?x16xf32>, %len: tensor<?xi64>, %wi: tensor<16x8xf32>) -> (tensor<?x?x16xf32>, tensor<?x16xf32>) {
  %ys, %hT = loom.scan reverse ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x16xf32>) lengths(%len : tensor<?xi64>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x16xf32>):
    %a = loom.linear %x, %wi : tensor<?x8xf32>, tensor<16x8xf32> -> tensor<?x16xf32>
    %s = loom.add %a, %h : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
    %h1 = loom.tanh %s : tensor<?x16xf32>
    loom.yield %h1, %h1 : tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x?x16xf32>, tensor<?x16xf32>
  return %ys, %hT : tensor<?x?x16xf32>, tensor<?x16xf32>
}

// -----

// A forward scan without lengths carries the new state as is.
// CHECK-LABEL: func.func @forward
// CHECK: scf.for %[[I:.*]] = {{.*}} iter_args
// CHECK-NOT: arith.subi
// CHECK: tensor.extract_slice %{{.*}}[%[[I]], 0, 0]
// CHECK-NOT: arith.select
// CHECK: scf.yield
func.func @forward(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>) -> tensor<?x?x8xf32> {
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %s = loom.mul %x, %h : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    loom.yield %s, %s : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %ys : tensor<?x?x8xf32>
}

// -----

// Broadcasting aligns trailing dimensions; a rank-0 scalar maps to ().
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[BIAS:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[SCALAR:.*]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @broadcast
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[BIAS]], #[[ID]]]
// CHECK: arith.addf
// CHECK: linalg.generic {indexing_maps = [#[[SCALAR]], #[[ID]], #[[ID]]]
// CHECK: arith.subf
// CHECK: linalg.generic
// CHECK: arith.mulf
// CHECK: linalg.generic
// CHECK: arith.divf
func.func @broadcast(%a: tensor<?x16xf32>, %b: tensor<16xf32>, %one: tensor<f32>) -> tensor<?x16xf32> {
  %0 = loom.add %a, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  %1 = loom.sub %one, %0 : tensor<f32>, tensor<?x16xf32> -> tensor<?x16xf32>
  %2 = loom.mul %1, %a : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
  %3 = loom.div %2, %a : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x16xf32>
  return %3 : tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @unary
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: arith.addf
// CHECK: arith.divf
// CHECK: math.tanh
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: arith.negf
// CHECK-NOT: loom.dropout
func.func @unary(%a: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %0 = loom.sigmoid %a : tensor<?x16xf32>
  %1 = loom.tanh %0 : tensor<?x16xf32>
  %2 = loom.relu %1 : tensor<?x16xf32>
  %3 = loom.exp %2 : tensor<?x16xf32>
  %4 = loom.neg %3 : tensor<?x16xf32>
  %5 = loom.dropout %4 {p = 0.5 : f32} : tensor<?x16xf32>
  return %5 : tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @shapes
// CHECK: tensor.extract_slice %{{.*}}[0, 0] [%{{.*}}, 8] [1, 1]
// CHECK: tensor.extract_slice %{{.*}}[0, 8] [%{{.*}}, 8] [1, 1]
// CHECK: %[[E:.*]] = tensor.empty(%{{.*}}) : tensor<?x16xf32>
// CHECK: %[[C1:.*]] = tensor.insert_slice %{{.*}} into %[[E]][0, 0] [%{{.*}}, 8]
// CHECK: tensor.insert_slice %{{.*}} into %[[C1]][0, 8] [%{{.*}}, 8]
// CHECK: %[[S:.*]] = tensor.empty(%{{.*}}) : tensor<2x?x16xf32>
// CHECK: %[[S1:.*]] = tensor.insert_slice %{{.*}} into %[[S]][0, 0, 0] [1, %{{.*}}, 16]
// CHECK: tensor.insert_slice %{{.*}} into %[[S1]][1, 0, 0] [1, %{{.*}}, 16]
// CHECK: tensor.extract_slice %{{.*}}[1, 0, 0] [1, %{{.*}}, 16] [1, 1, 1] : tensor<2x?x16xf32> to tensor<?x16xf32>
// CHECK: linalg.transpose {{.*}} permutation = [1, 0]
func.func @shapes(%a: tensor<?x16xf32>) -> tensor<16x?xf32> {
  %x, %y = loom.split %a : tensor<?x16xf32> -> tensor<?x8xf32>, tensor<?x8xf32>
  %c = loom.concat %y, %x : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x16xf32>
  %s = loom.stack %a, %c : tensor<?x16xf32>, tensor<?x16xf32> -> tensor<2x?x16xf32>
  %i = loom.index %s[1] : tensor<2x?x16xf32> -> tensor<?x16xf32>
  %t = loom.transpose %i [1, 0] : tensor<?x16xf32> -> tensor<16x?xf32>
  return %t : tensor<16x?xf32>
}

// -----

// Embedding gathers rows with tensor.extract at the id and the column index.
// CHECK-LABEL: func.func @embedding
// CHECK: linalg.generic
// CHECK: arith.index_cast
// CHECK: linalg.index 2
// CHECK: tensor.extract
func.func @embedding(%ids: tensor<?x?xi64>, %w: tensor<10x4xf32>) -> tensor<?x?x4xf32> {
  %0 = loom.embedding %ids, %w : tensor<?x?xi64>, tensor<10x4xf32> -> tensor<?x?x4xf32>
  return %0 : tensor<?x?x4xf32>
}

// -----

// Softmax: a max reduction, a sum of shifted exponentials, then the map.
// CHECK-LABEL: func.func @softmax
// CHECK: linalg.fill ins(%{{.*}} : f32)
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK: arith.maximumf
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK: math.exp
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]
// CHECK: arith.divf
// CHECK-LABEL: func.func @log_softmax
// CHECK: math.log
func.func @softmax(%a: tensor<?x10xf32>) -> tensor<?x10xf32> {
  %0 = loom.softmax %a : tensor<?x10xf32>
  return %0 : tensor<?x10xf32>
}
func.func @log_softmax(%a: tensor<?x10xf32>) -> tensor<?x10xf32> {
  %0 = loom.log_softmax %a : tensor<?x10xf32>
  return %0 : tensor<?x10xf32>
}

// -----

// CHECK-LABEL: func.func @layernorm
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK: math.rsqrt
func.func @layernorm(%a: tensor<?x10xf32>, %w: tensor<10xf32>, %b: tensor<10xf32>) -> tensor<?x10xf32> {
  %0 = loom.layernorm %a, %w, %b {epsilon = 1.0e-05 : f32} : tensor<?x10xf32>, tensor<10xf32>, tensor<10xf32> -> tensor<?x10xf32>
  return %0 : tensor<?x10xf32>
}

// -----

// CHECK-LABEL: func.func @zeros
// CHECK: %[[E:.*]] = tensor.empty(%{{.*}}) : tensor<?x16xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[E]]
func.func @zeros(%b: index) -> tensor<?x16xf32> {
  %0 = loom.zeros %b : tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// Ops of gradient functions.
// CHECK-LABEL: func.func @grads
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel", "parallel"]
// CHECK: fastmath<contract>
// CHECK: scf.for
// CHECK: tensor.extract_slice
// CHECK: tensor.insert_slice
// CHECK: arith.cmpf ogt
// CHECK: linalg.index 0
// CHECK: arith.cmpi slt
func.func @grads(%d: tensor<?x4xf32>, %x: tensor<?x3xf32>, %ids: tensor<?xi64>, %len: tensor<?xi64>, %s: tensor<?x?x3xf32>) -> (tensor<4xf32>, tensor<4x3xf32>, tensor<9x4xf32>, tensor<?x4xf32>, tensor<?x?xf32>) {
  %r = loom.reduce_sum %d : tensor<?x4xf32> -> tensor<4xf32>
  %w = loom.linear_weight_grad %d, %x : tensor<?x4xf32>, tensor<?x3xf32> -> tensor<4x3xf32>
  %e = loom.embedding_grad %ids, %d : tensor<?xi64>, tensor<?x4xf32> -> tensor<9x4xf32>
  %g = loom.relu_grad %d, %d : tensor<?x4xf32>
  %m = loom.length_mask %len, %s : tensor<?xi64>, tensor<?x?x3xf32> -> tensor<?x?xf32>
  return %r, %w, %e, %g, %m : tensor<4xf32>, tensor<4x3xf32>, tensor<9x4xf32>, tensor<?x4xf32>, tensor<?x?xf32>
}

// -----

// Cross-entropy ignores positions whose target is ignore_index (their class
// id is never read) and divides by the count of the others.
// CHECK-LABEL: func.func @cross_entropy
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: %[[COUNTS:.*]] = arith.cmpi ne
// CHECK: tensor.extract
// CHECK: math.log
// CHECK: arith.select %[[COUNTS]]
// CHECK: arith.uitofp
// CHECK: arith.divf
// CHECK-LABEL: func.func @cross_entropy_grad
// CHECK: linalg.index 2
// CHECK: arith.cmpi eq
func.func @cross_entropy(%l: tensor<?x?x4xf32>, %t: tensor<?x?xi64>) -> tensor<f32> {
  %r = loom.cross_entropy %l, %t {ignore_index = 0 : i64} : tensor<?x?x4xf32>, tensor<?x?xi64> -> tensor<f32>
  return %r : tensor<f32>
}
func.func @cross_entropy_grad(%l: tensor<?x?x4xf32>, %t: tensor<?x?xi64>, %d: tensor<f32>) -> tensor<?x?x4xf32> {
  %r = loom.cross_entropy_grad %l, %t, %d : tensor<?x?x4xf32>, tensor<?x?xi64>, tensor<f32> -> tensor<?x?x4xf32>
  return %r : tensor<?x?x4xf32>
}
