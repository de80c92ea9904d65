// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-copies-to-linalg))' | FileCheck %s --check-prefix=COPY
// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-expand-math))' | FileCheck %s --check-prefix=MATH

// COPY-LABEL: func.func @copy
// COPY: linalg.copy ins(%{{.*}} : memref<?x4xf32, strided<[8, 1]>>) outs(%{{.*}} : memref<?x4xf32>)
// COPY-NOT: memref.copy
func.func @copy(%a: memref<?x4xf32, strided<[8, 1]>>, %b: memref<?x4xf32>) {
  memref.copy %a, %b : memref<?x4xf32, strided<[8, 1]>> to memref<?x4xf32>
  return
}

// -----

// tanh and exp become polynomial arithmetic (no libm calls).
// MATH-LABEL: func.func @math
// MATH-NOT: math.tanh
// MATH-NOT: math.exp
// MATH: arith.mulf
// MATH: return
func.func @math(%x: f32) -> f32 {
  %0 = math.tanh %x : f32
  %1 = math.exp %0 : f32
  return %1 : f32
}
