// RUN: loom-opt %s -split-input-file -loom-expand-shape-to-cast | FileCheck %s
// RUN: loom-opt %s -split-input-file -loom-expand-shape-to-cast -expand-strided-metadata -o /dev/null

// [T·B, G] → [T, B, G] with T and B dynamic (upstream
// expand-strided-metadata crashes on it): a reinterpret_cast of the base
// buffer with sizes [T, B, G] and strides [B·G, G, 1].
// CHECK-LABEL: func.func @two_dynamic
// CHECK: %[[BASE:.*]], %[[OFF:.*]], %[[SIZES:.*]]:2, %[[STRIDES:.*]]:2 = memref.extract_strided_metadata %arg0
// CHECK: %[[S0:.*]] = arith.muli %arg2, %c1024
// CHECK: memref.reinterpret_cast %[[BASE]] to offset: [0], sizes: [%arg1, %arg2, 1024], strides: [%[[S0]], 1024, 1] : memref<f32> to memref<?x?x1024xf32>
func.func @two_dynamic(%a: memref<?x1024xf32>, %t: index, %b: index) -> memref<?x?x1024xf32> {
  %e = memref.expand_shape %a [[0, 1], [2]] output_shape [%t, %b, 1024] : memref<?x1024xf32> into memref<?x?x1024xf32>
  return %e : memref<?x?x1024xf32>
}

// -----

// A strided source keeps its strides and offset: the inner expanded
// dimension takes the source row stride, the outer one that times B.
// CHECK-LABEL: func.func @strided
// CHECK: %[[BASE:.*]], %[[OFF:.*]], %[[SIZES:.*]]:2, %[[STRIDES:.*]]:2 = memref.extract_strided_metadata %arg0
// CHECK: %[[S0:.*]] = arith.muli %[[STRIDES]]#0, %arg2
// CHECK: memref.reinterpret_cast %[[BASE]] to offset: [%[[OFF]]], sizes: [%arg1, %arg2, 16], strides: [%[[S0]], %[[STRIDES]]#0, 1]
func.func @strided(%a: memref<?x16xf32, strided<[?, 1], offset: ?>>, %t: index, %b: index) -> memref<?x?x16xf32, strided<[?, ?, 1], offset: ?>> {
  %e = memref.expand_shape %a [[0, 1], [2]] output_shape [%t, %b, 16] : memref<?x16xf32, strided<[?, 1], offset: ?>> into memref<?x?x16xf32, strided<[?, ?, 1], offset: ?>>
  return %e : memref<?x?x16xf32, strided<[?, ?, 1], offset: ?>>
}
