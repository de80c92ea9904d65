// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-vectorize-contractions,canonicalize,cse))' | FileCheck %s

// CHECK-DAG: #[[VEC:.*]] = #llvm.loop_vectorize<disable = true>
// CHECK-DAG: #[[INTERLEAVE:.*]] = #llvm.loop_interleave<count = 1 : i32>
// CHECK-DAG: #[[UNROLL:.*]] = #llvm.loop_unroll<disable = true>
// CHECK-DAG: #{{.*}} = #llvm.loop_annotation<vectorize = #[[VEC]], interleave = #[[INTERLEAVE]], unroll = #[[UNROLL]]>

// x[T, B, I] · Wt[I, O] accumulated into y[T, B, O] (a forward matmul):
// outermost, the loop over blocks of 64 columns that threads split
// (loom.parallel = "range": a thread runs the body once on its range of
// blocks, [lo, hi) columns); within it column panels of 256 and blocks of
// 256 reduction indices, so that B's block stays in cache while every T
// and every row uses it.
// With T·B ≥ 16 rows, each block of B is first packed, vector by vector,
// into a buffer of 258-row (not a power of two) stripes, zero past the
// last column, and the tiles read it unmasked; with fewer rows, B is read
// in place. Either way: 6-row blocks, then 4-, 2- and 1-row blocks; full
// tiles load and store C unmasked, a last partial tile masked; per
// reduction index each tile loads B, broadcasts A and issues FMAs.
#x = affine_map<(t, b, i, o) -> (t, b, i)>
#w = affine_map<(t, b, i, o) -> (i, o)>
#y = affine_map<(t, b, i, o) -> (t, b, o)>
// CHECK-LABEL: func.func @forward
// CHECK-NOT: linalg.generic
// CHECK: %[[N:.*]] = memref.dim %arg1, %c1
// CHECK: %[[BLOCKS:.*]] = arith.ceildivui %[[N]], %c64
// CHECK: scf.for %[[J:.*]] = %c0 to %[[BLOCKS]] step %c1 {
// CHECK: %[[LO:.*]] = arith.muli %[[J]], %c64
// CHECK: %[[J1:.*]] = arith.addi %[[J]], %c1 {loom.parallel_end}
// CHECK: %[[END:.*]] = arith.muli %[[J1]], %c64
// CHECK: %[[HI:.*]] = arith.minui %[[END]], %[[N]]
// CHECK: %[[ROWS:.*]] = arith.muli
// CHECK: %[[USE:.*]] = arith.cmpi uge, %[[ROWS]], %c16
// CHECK: %[[COUNT:.*]] = arith.select %[[USE]], %c16, %c1
// CHECK: %[[BUF:.*]] = memref.alloc(%[[COUNT]]) {alignment = 64 : i64} : memref<?x258x16xf32>
// CHECK: scf.for %[[P:.*]] = %[[LO]] to %[[HI]] step %c256
// CHECK: scf.for %[[KB:.*]] = %c0 to %{{.*}} step %c256
// CHECK: scf.if %[[USE]] {
// CHECK: scf.for %[[PK:.*]] = %[[KB]] to %{{.*}} step %c1 {
// CHECK: scf.for %[[PV:.*]] = %c0 to %{{.*}} step %c1 {
// CHECK: %[[ROW:.*]] = vector.maskedload %arg1[%[[PK]], %{{.*}}]
// CHECK: vector.store %[[ROW]], %[[BUF]][%[[PV]], %{{.*}}, %c0]
// CHECK: scf.for %[[T:.*]] = %c0 to %{{.*}} step %c1
// CHECK: scf.for %[[M:.*]] = %c0 to %{{.*}} step %c6
// CHECK-NOT: vector.maskedload
// CHECK: vector.load %arg2[%[[T]], %[[M]], %{{.*}}]
// CHECK: scf.for %[[K:.*]] = %[[KB]] to %{{.*}} step %c1 iter_args(
// CHECK: vector.load %[[BUF]]
// CHECK: memref.load %arg0[%[[T]], %[[M]], %[[K]]]
// CHECK: vector.broadcast
// CHECK: vector.fma
// CHECK: scf.yield
// The innermost reduction loop is not to be unrolled or vectorized again.
// CHECK-NEXT: } {loop_annotation = #[[ANN:.*]]}
// CHECK: vector.store %{{.*}}, %arg2[%[[T]], %[[M]], %{{.*}}]
// CHECK: scf.if
// CHECK: vector.create_mask
// CHECK: vector.maskedload %arg2
// CHECK: vector.load %[[BUF]]
// CHECK: vector.maskedstore %arg2
// CHECK: step %c4
// CHECK: step %c2
// CHECK: step %c1
// CHECK: } else {
// CHECK: scf.for %[[T2:.*]] = %c0 to %{{.*}} step %c1
// CHECK: scf.for %[[M2:.*]] = %c0 to %{{.*}} step %c6
// CHECK: scf.for %[[K2:.*]] = %[[KB]] to %{{.*}} step %c1 iter_args(
// CHECK: vector.load %arg1[%[[K2]], %{{.*}}]
// CHECK: memref.load %arg0[%[[T2]], %[[M2]], %[[K2]]]
// CHECK: scf.if
// CHECK: vector.maskedload %arg2
// CHECK: vector.maskedload %arg1
// CHECK: vector.maskedstore %arg2
// CHECK: memref.dealloc %[[BUF]]
// CHECK: {loom.parallel = "range"}
func.func @forward(%x: memref<?x?x?xf32>, %wt: memref<?x?xf32>, %y: memref<?x?x?xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
      ins(%x, %wt : memref<?x?x?xf32>, memref<?x?xf32>) outs(%y : memref<?x?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A weight gradient dW[O, I] += Σ_{t,b} dy[t, b, o] · x[t, b, i]: both
// reductions innermost, in order, with the accumulators in registers (no
// reduction blocks with two reduction dimensions, and B read in place).
#dy = affine_map<(t, b, o, i) -> (t, b, o)>
#xx = affine_map<(t, b, o, i) -> (t, b, i)>
#dw = affine_map<(t, b, o, i) -> (o, i)>
// CHECK-LABEL: func.func @weight_grad
// CHECK: scf.for %[[P:.*]] = %{{.*}} to %{{.*}} step %c256
// CHECK: scf.for %[[M:.*]] = %c0 to %{{.*}} step %c6
// CHECK: scf.for %[[T:.*]] = %c0 to %{{.*}} step %c1 iter_args(
// CHECK: scf.for %[[B:.*]] = %c0 to %{{.*}} step %c1 iter_args(
// CHECK: vector.load %arg1[%[[T]], %[[B]], %{{.*}}]
// CHECK: memref.load %arg0[%[[T]], %[[B]], %[[M]]]
// CHECK: vector.fma
// Only the innermost of several reduction loops carries the annotation.
// CHECK: scf.yield
// CHECK-NEXT: } {loop_annotation = #
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
func.func @weight_grad(%dy: memref<?x?x?xf32>, %x: memref<?x?x?xf32>, %dw: memref<?x?xf32>) {
  linalg.generic {indexing_maps = [#dy, #xx, #dw], iterator_types = ["reduction", "reduction", "parallel", "parallel"]}
      ins(%dy, %x : memref<?x?x?xf32>, memref<?x?x?xf32>) outs(%dw : memref<?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Not a contraction of that form (B strided in n, or an elementwise body):
// left alone.
#id = affine_map<(i, j) -> (i, j)>
// CHECK-LABEL: func.func @elementwise
// CHECK: linalg.generic
func.func @elementwise(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %c: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : memref<4x8xf32>, memref<4x8xf32>) outs(%c : memref<4x8xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %z, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// B packed at load time by loom-pack-weights, B[n floordiv 16, k, n mod 16]:
// read in place, vector j of a tile at [col / 16, k, col % 16], with no
// run-time packing buffer; only a last partial tile is masked.
#a = affine_map<(m, k, n) -> (m, k)>
#bp = affine_map<(m, k, n) -> (n floordiv 16, k, n mod 16)>
#c = affine_map<(m, k, n) -> (m, n)>
// CHECK-LABEL: func.func @prepacked
// CHECK-NOT: memref.alloc
// CHECK: scf.for %[[M:.*]] = %c0 to %{{.*}} step %c6
// CHECK: scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step %c64
// CHECK: scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %c1 iter_args(
// CHECK: %[[G:.*]] = arith.divui %[[N]], %c16
// CHECK: %[[J:.*]] = arith.remui %[[N]], %c16
// CHECK: vector.load %arg1[%[[G]], %[[K]], %[[J]]] : memref<?x?x16xf32>, vector<16xf32>
// CHECK: scf.if
// CHECK: vector.maskedload %arg1
// CHECK-NOT: memref.dealloc
func.func @prepacked(%x: memref<?x?xf32>, %wp: memref<?x?x16xf32>, %y: memref<?x?xf32>) {
  linalg.generic {indexing_maps = [#a, #bp, #c], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%x, %wp : memref<?x?xf32>, memref<?x?x16xf32>) outs(%y : memref<?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b fastmath<contract> : f32
    %s = arith.addf %c, %m fastmath<contract> : f32
    linalg.yield %s : f32
  }
  return
}
