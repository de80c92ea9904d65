// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-linalg-to-loops))' | FileCheck %s --check-prefix=MARK
// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-linalg-to-loops),loom-outline-parallel-loops,canonicalize)' | FileCheck %s --check-prefix=OUTLINE

// An elementwise op over [B, 512]: its outer loop (over B) is marked
// parallel and becomes a function of a range of rows, called on [0, B).
#id = affine_map<(i, j) -> (i, j)>
// MARK-LABEL: func.func @rows
// MARK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// MARK: scf.for
// MARK: math.tanh
// MARK: } {loom.parallel = "iterations"}
// OUTLINE-LABEL: func.func @rows(
// OUTLINE-SAME: %[[A:.*]]: memref<?x512xf32>, %[[C:.*]]: memref<?x512xf32>)
// OUTLINE-NOT: scf.for
// OUTLINE: %[[DIM:.*]] = memref.dim %[[A]]
// OUTLINE: %[[N:.*]] = arith.maxsi %[[DIM]]
// OUTLINE: call @rows__par0(%c0, %[[N]], %[[A]], %[[C]]) {loom.parallel_call}
// OUTLINE: func.func private @rows__par0(%[[BEGIN:.*]]: index, %[[END:.*]]: index, %[[A2:.*]]: memref<?x512xf32>, %[[C2:.*]]: memref<?x512xf32>) attributes {loom.parallel_body}
// OUTLINE: scf.for %[[I:.*]] = %[[BEGIN]] to %[[END]] step
// OUTLINE: scf.for %[[J:.*]] =
// OUTLINE: memref.load %[[A2]][%[[I]], %[[J]]]
// OUTLINE: math.tanh
// OUTLINE: memref.store %{{.*}}, %[[C2]][%[[I]], %[[J]]]
func.func @rows(%a: memref<?x512xf32>, %c: memref<?x512xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<?x512xf32>) outs(%c : memref<?x512xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  return
}

// -----

// Too little work per outer iteration (4 elements): stays serial. A
// reduction outermost: stays serial.
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (j)>
// MARK-LABEL: func.func @small
// MARK-NOT: loom.parallel
// MARK: return
// OUTLINE-LABEL: func.func @small
// OUTLINE-NOT: call
// OUTLINE: return
func.func @small(%a: memref<?x4xf32>, %c: memref<?x4xf32>, %s: memref<4096xf32>, %big: memref<?x4096xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<?x4xf32>) outs(%c : memref<?x4xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["reduction", "parallel"]}
      ins(%big : memref<?x4096xf32>) outs(%s : memref<4096xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = arith.addf %x, %y : f32
    linalg.yield %t : f32
  }
  return
}

// -----

// A loop marked "range" (a matmul's column blocks, as
// loom-vectorize-contractions makes them): the body runs once on the
// whole range, with the induction variable as its start and the value
// marked loom.parallel_end as its end. Constants are cloned, not captured.
// A marked loop inside another one is not outlined on its own.
// OUTLINE-LABEL: func.func @range(
// OUTLINE: call @range__par0(%c0, %arg1, %arg0, %arg1) {loom.parallel_call}
// OUTLINE: func.func private @range__par0(%[[B:.*]]: index, %[[E:.*]]: index, %[[M:.*]]: memref<?xf32>, %{{.*}}: index)
// OUTLINE-DAG: %[[C64:.*]] = arith.constant 64 : index
// OUTLINE: %[[LO:.*]] = arith.muli %[[B]], %[[C64]]
// OUTLINE: %[[HI:.*]] = arith.muli %[[E]], %[[C64]]
// OUTLINE: scf.for %{{.*}} = %[[LO]] to %[[HI]]
// OUTLINE: scf.for
// OUTLINE-NOT: loom.parallel
// OUTLINE: memref.store %{{.*}}, %[[M]]
// OUTLINE-NOT: loom.parallel
// OUTLINE: return
func.func @range(%m: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %f = arith.constant 1.0 : f32
  scf.for %j = %c0 to %n step %c1 {
    %lo = arith.muli %j, %c64 : index
    %j1 = arith.addi %j, %c1 {loom.parallel_end} : index
    %hi = arith.muli %j1, %c64 : index
    scf.for %i = %lo to %hi step %c1 {
      scf.for %k = %c0 to %n step %c1 {
        memref.store %f, %m[%i] : memref<?xf32>
      } {loom.parallel = "iterations"}
    }
  } {loom.parallel = "range"}
  return
}

// -----

// Iterations of a loop with any bounds and step: the call runs
// ceil((ub - lb) / step) iterations, and iteration k of the body is
// lb + k · step.
// OUTLINE-LABEL: func.func @strided(
// OUTLINE-SAME: %[[M:.*]]: memref<?xf32>, %[[LB:.*]]: index, %[[UB:.*]]: index)
// OUTLINE: %[[SPAN:.*]] = arith.subi %[[UB]], %[[LB]]
// OUTLINE: %[[POS:.*]] = arith.maxsi %[[SPAN]], %c0
// OUTLINE: %[[N:.*]] = arith.ceildivui %[[POS]], %c3
// OUTLINE: call @strided__par0(%c0, %[[N]], %[[LB]], %[[M]])
// OUTLINE: func.func private @strided__par0(%[[B:.*]]: index, %[[E:.*]]: index, %[[LB2:.*]]: index, %[[M2:.*]]: memref<?xf32>)
// OUTLINE: scf.for %[[K:.*]] = %[[B]] to %[[E]] step %c1
// OUTLINE: %[[KS:.*]] = arith.muli %[[K]], %c3
// OUTLINE: %[[IV:.*]] = arith.addi %[[LB2]], %[[KS]]
// OUTLINE: memref.store %{{.*}}, %[[M2]][%[[IV]]]
func.func @strided(%m: memref<?xf32>, %lb: index, %ub: index) {
  %c3 = arith.constant 3 : index
  %f = arith.constant 2.0 : f32
  scf.for %i = %lb to %ub step %c3 {
    memref.store %f, %m[%i] : memref<?xf32>
  } {loom.parallel = "iterations"}
  return
}

// -----

// A row reduction (a softmax's Σ exp(x - max) over a 10000-word row): the
// parallel loop over rows is marked; the sum lives in an iter_arg of the
// reduction loop (loaded before it, stored after), marked reassoc so that
// LLVM can vectorize it, instead of a load and a store of the output per
// element; linalg.index reads the loop's induction variable.
#x = affine_map<(i, j) -> (i, j)>
#r = affine_map<(i, j) -> (i)>
// MARK-LABEL: func.func @row_sum
// MARK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// MARK: %[[INIT:.*]] = memref.load %arg2[%[[I]]]
// MARK: %[[SUM:.*]] = scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[INIT]]) -> (f32) {
// MARK: %[[X:.*]] = memref.load %arg0[%[[I]], %[[J]]]
// MARK: %[[M:.*]] = memref.load %arg1[%[[I]]]
// MARK: %[[D:.*]] = arith.subf %[[X]], %[[M]]
// MARK: %[[E:.*]] = math.exp %[[D]]
// MARK: %[[JF:.*]] = arith.index_cast %[[J]]
// MARK: %[[S:.*]] = arith.addf %[[ACC]], %[[E]] fastmath<reassoc>
// MARK: scf.yield %[[S]]
// MARK: memref.store %[[SUM]], %arg2[%[[I]]]
// MARK: } {loom.parallel = "iterations"}
func.func @row_sum(%x: memref<?x10000xf32>, %m: memref<?xf32>, %s: memref<?xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #r], iterator_types = ["parallel", "reduction"]}
      ins(%x, %m : memref<?x10000xf32>, memref<?xf32>) outs(%s : memref<?xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %d = arith.subf %a, %b : f32
    %e = math.exp %d : f32
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i64
    %t = arith.addf %acc, %e : f32
    linalg.yield %t : f32
  }
  return
}
