// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(loom-params-to-args,func.func(convert-loom-to-linalg,canonicalize,loom-pack-weights),loom-split-weight-packing)' | FileCheck %s
// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(loom-params-to-args,func.func(convert-loom-to-linalg,canonicalize,loom-pack-weights))' -verify-diagnostics -o /dev/null

// The matmul's B, the transposed weight [8, 20], is computed from a
// parameter only: it is packed into ceil(20 / 16) = 2 panels of 16 columns
// ([2, 8, 16], zero past column 20), the matmul reads it as
// B[n floordiv 16, k, n mod 16], and both the transpose and the packing
// move into @M__pack, run once when the weights are set.
// CHECK-DAG: #[[PACKED:.*]] = affine_map<(d0, d1, d2, d3) -> (d3 floordiv 16, d2, d3 mod 16)>
// CHECK-LABEL: func.func @M(
// CHECK-SAME: %[[X:.*]]: tensor<?x?x8xf32> {loom.name = "x"}, {{.*}}, %[[BP:.*]]: tensor<2x8x16xf32> {loom.packed = 0 : i64})
// CHECK-NOT: linalg.transpose
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[PACKED]], #{{.*}}], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[X]], %[[BP]] : tensor<?x?x8xf32>, tensor<2x8x16xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK-LABEL: func.func @M__pack(
// CHECK-SAME: -> (tensor<2x8x16xf32> {loom.name = "packed.0"})
// CHECK: %[[T:.*]] = linalg.transpose
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} outs(%{{.*}} : tensor<2x8x16xf32>)
// CHECK: %[[G:.*]] = linalg.index 0
// CHECK: %[[K:.*]] = linalg.index 1
// CHECK: %[[J:.*]] = linalg.index 2
// CHECK: %[[N0:.*]] = arith.muli %[[G]], %c16
// CHECK: %[[N:.*]] = arith.addi %[[N0]], %[[J]]
// CHECK: %[[C:.*]] = arith.minui %[[N]], %c19
// CHECK: %[[E:.*]] = tensor.extract %[[T]][%[[K]], %[[C]]]
// CHECK: %[[IN:.*]] = arith.cmpi ule, %[[N]], %c19
// CHECK: arith.select %[[IN]], %[[E]], %cst
func.func @M(%x: tensor<?x?x8xf32> {loom.name = "x"}) -> (tensor<?x?x20xf32> {loom.name = "y"}) attributes {loom.model} {
  %w = loom.param "fc.weight" : tensor<20x8xf32>
  // expected-remark@+1 {{weight [8, 20] packed into 2 panels of 16 columns for the matmul kernel, once when the weights are set (loom-pack-weights)}}
  %y = loom.linear %x, %w : tensor<?x?x8xf32>, tensor<20x8xf32> -> tensor<?x?x20xf32>
  return %y : tensor<?x?x20xf32>
}

// -----

// A matmul whose B is an input (not computed from parameters only) is left
// as it is: it changes on every call.
// CHECK-LABEL: func.func @N(
// CHECK-NOT: floordiv
// CHECK: linalg.generic
// CHECK-NOT: func.func @N__pack
func.func @N(%x: tensor<?x?x8xf32> {loom.name = "x"}, %w: tensor<20x8xf32> {loom.name = "w"}) -> (tensor<?x?x20xf32> {loom.name = "y"}) attributes {loom.model} {
  %y = loom.linear %x, %w : tensor<?x?x8xf32>, tensor<20x8xf32> -> tensor<?x?x20xf32>
  return %y : tensor<?x?x20xf32>
}
