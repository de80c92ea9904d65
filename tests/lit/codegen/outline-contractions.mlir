// RUN: loom-opt %s -loom-outline-contractions -verify-diagnostics | FileCheck %s

// Two matmuls of the same form but different sizes share one kernel
// function taking fully dynamic operands (unit innermost stride kept); a
// weight-gradient matmul (another form) gets its own. Elementwise ops stay.
#x = affine_map<(b, i, o) -> (b, i)>
#w = affine_map<(b, i, o) -> (i, o)>
#y = affine_map<(b, i, o) -> (b, o)>
#dy = affine_map<(o, i, b) -> (b, o)>
#xx = affine_map<(o, i, b) -> (b, i)>
#dw = affine_map<(o, i, b) -> (o, i)>
#id = affine_map<(i, j) -> (i, j)>
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[X:.*]]: memref<?x8xf32>, %[[W:.*]]: memref<8x16xf32>, %[[Y:.*]]: memref<?x16xf32>, %[[X2:.*]]: memref<?x32xf32>, %[[W2:.*]]: memref<32x64xf32>, %[[Y2:.*]]: memref<?x64xf32>
// CHECK: %[[CX:.*]] = memref.cast %[[X]] : memref<?x8xf32> to memref<?x?xf32, strided<[?, 1], offset: ?>>
// CHECK: %[[CW:.*]] = memref.cast %[[W]]
// CHECK: %[[CY:.*]] = memref.cast %[[Y]]
// CHECK: call @loom_matmul0(%[[CX]], %[[CW]], %[[CY]])
// CHECK: call @loom_matmul0(
// CHECK: call @loom_matmul1(
// CHECK: linalg.generic
// CHECK: func.func private @loom_matmul0(%{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>, %{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>, %{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>) attributes {loom.kernel, passthrough = ["noinline"]}
// CHECK: linalg.generic
// CHECK: func.func private @loom_matmul1(
// CHECK-NOT: func.func
func.func @f(%x: memref<?x8xf32>, %w: memref<8x16xf32>, %y: memref<?x16xf32>,
             %x2: memref<?x32xf32>, %w2: memref<32x64xf32>, %y2: memref<?x64xf32>,
             %d: memref<?x16xf32>, %dwt: memref<16x8xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %w : memref<?x8xf32>, memref<8x16xf32>) outs(%y : memref<?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  // expected-remark @below {{matmul shares the register-blocked kernel @loom_matmul0 with a matmul of the same form (loom-outline-contractions)}}
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x2, %w2 : memref<?x32xf32>, memref<32x64xf32>) outs(%y2 : memref<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#dy, #xx, #dw], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%d, %x : memref<?x16xf32>, memref<?x8xf32>) outs(%dwt : memref<16x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %c, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%y : memref<?x16xf32>) outs(%d : memref<?x16xf32>) {
  ^bb0(%a: f32, %c: f32):
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  }
  return
}
