// RUN: loom-opt %s -pass-pipeline='builtin.module(loom-params-to-args,func.func(convert-loom-to-linalg,canonicalize,loom-pack-weights{bf16=true}),loom-split-weight-packing)' | FileCheck %s
// RUN: loom-opt %s -pass-pipeline='builtin.module(loom-params-to-args,func.func(convert-loom-to-linalg,canonicalize,loom-pack-weights{bf16=true}))' -verify-diagnostics -o /dev/null
// After bufferization the kernel loads bf16 vectors and widens them.
// RUN: loom-opt %s -pass-pipeline='builtin.module(loom-params-to-args,func.func(convert-loom-to-linalg,canonicalize,loom-pack-weights{bf16=true}),loom-split-weight-packing,loom-outputs-to-args,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},func.func(loom-vectorize-contractions{vector-width=8 vectors=2 rows=6},canonicalize))' | FileCheck %s --check-prefix=KERNEL

// With bf16 storage the packed weight is a bf16 tensor, rounded in the
// packing (arith.truncf), and the matmul's body widens each B element to
// f32 before the multiply: accumulation and result stay f32.
// CHECK-LABEL: func.func @M(
// CHECK-SAME: {{.*}}, %[[BP:.*]]: tensor<2x8x16xbf16> {loom.packed = 0 : i64})
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[BP]] : tensor<?x?x8xf32>, tensor<2x8x16xbf16>)
// CHECK-NEXT: ^bb0(%[[A:.*]]: f32, %[[B:.*]]: bf16, %[[C:.*]]: f32):
// CHECK-NEXT: %[[W:.*]] = arith.extf %[[B]] : bf16 to f32
// CHECK-NEXT: %[[M:.*]] = arith.mulf %[[A]], %[[W]]
// CHECK-NEXT: arith.addf %[[C]], %[[M]]
// CHECK-LABEL: func.func @M__pack(
// CHECK-SAME: -> (tensor<2x8x16xbf16> {loom.name = "packed.0"})
// CHECK: arith.select
// CHECK-NEXT: arith.truncf %{{.*}} : f32 to bf16

// KERNEL-LABEL: func.func @M(
// KERNEL: scf.for
// KERNEL: %[[V:.*]] = vector.load %{{.*}} : memref<2x8x16xbf16>, vector<8xbf16>
// KERNEL: arith.extf %[[V]] : vector<8xbf16> to vector<8xf32>
// KERNEL: vector.fma
// The partial tile reads B unmasked, from the last group at most.
// KERNEL: scf.if
// KERNEL: %[[G:.*]] = arith.minui %{{.*}}, %c1 : index
// KERNEL: vector.load %{{.*}}[%[[G]], %{{.*}}, %{{.*}}] : memref<2x8x16xbf16>, vector<8xbf16>
// KERNEL-NOT: vector.maskedload %{{.*}} : memref<2x8x16xbf16>
func.func @M(%x: tensor<?x?x8xf32> {loom.name = "x"}) -> (tensor<?x?x20xf32> {loom.name = "y"}) attributes {loom.model} {
  %w = loom.param "fc.weight" : tensor<20x8xf32>
  // expected-remark@+1 {{weight [8, 20] packed into 2 panels of 16 columns of bf16 for the matmul kernel, once when the weights are set (loom-pack-weights)}}
  %y = loom.linear %x, %w : tensor<?x?x8xf32>, tensor<20x8xf32> -> tensor<?x?x20xf32>
  return %y : tensor<?x?x20xf32>
}
