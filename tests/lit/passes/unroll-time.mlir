// RUN: loom-opt %s -pass-pipeline='builtin.module(func.func(convert-loom-to-linalg,loom-unroll-time{factor=1}))' 2>&1 | FileCheck %s --check-prefix=ONE
// RUN: loom-opt %s -pass-pipeline='builtin.module(func.func(convert-loom-to-linalg,loom-unroll-time{factor=2},canonicalize,cse))' | FileCheck %s --check-prefix=TWO
// RUN: loom-opt %s -pass-pipeline='builtin.module(func.func(convert-loom-to-linalg,loom-unroll-time{factor=4},canonicalize,cse))' | FileCheck %s --check-prefix=FOUR
// RUN: loom-opt %s -pass-pipeline='builtin.module(func.func(convert-loom-to-linalg,loom-unroll-time{factor=4}))' -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK
// RUN: loom-opt %s -pass-pipeline='builtin.module(func.func(convert-loom-to-linalg,loom-unroll-time))' | FileCheck %s --check-prefix=DEFAULT

// The time loop that a scan lowers to is marked loom.time_loop. Factor 1
// leaves it alone (and says nothing).
// ONE-NOT: remark
// ONE-LABEL: func.func @rnn
// ONE: scf.for
// ONE-NOT: scf.for
// ONE: } {loom.time_loop}
// ONE-NOT: scf.for
// ONE: return

// Factor 2: the main loop runs 2 steps per iteration up to T - T mod 2
// (T is a run-time size), then an epilogue loop runs the rest one by one.
// TWO-LABEL: func.func @rnn
// TWO: %[[T:.*]] = tensor.dim %arg0, %c0
// TWO: %[[REM:.*]] = arith.remsi %[[T]], %c2
// TWO: %[[MAIN:.*]] = arith.subi %[[T]], %[[REM]]
// TWO: %[[R:.*]]:2 = scf.for %[[I:.*]] = %c0 to %[[MAIN]] step %c2 iter_args(%[[H:.*]] = %arg1, %[[ACC:.*]] = %{{.*}})
// TWO: %[[X0:.*]] = tensor.extract_slice %arg0[%[[I]], 0, 0]
// TWO: %[[A0:.*]] = linalg.generic {{.*}} ins(%[[H]], %{{.*}} :
// TWO: math.tanh
// TWO: %[[S0:.*]] = tensor.insert_slice %[[Y0:.*]] into %[[ACC]][%[[I]], 0, 0]
// TWO: %[[I1:.*]] = arith.addi %[[I]], %c1
// TWO: tensor.extract_slice %arg0[%[[I1]], 0, 0]
// TWO: linalg.generic {{.*}} ins(%[[Y0]], %{{.*}} :
// TWO: math.tanh
// TWO: %[[S1:.*]] = tensor.insert_slice %[[Y1:.*]] into %[[S0]][%[[I1]], 0, 0]
// TWO: scf.yield %[[Y1]], %[[S1]]
// TWO: } {loom.time_loop, loom.unrolled = 2 : i64}
// TWO: %[[E:.*]]:2 = scf.for %[[J:.*]] = %[[MAIN]] to %[[T]] step %c1 iter_args(%{{.*}} = %[[R]]#0, %{{.*}} = %[[R]]#1)
// TWO: tensor.extract_slice %arg0[%[[J]], 0, 0]
// TWO-NOT: arith.addi %[[J]]
// TWO: } {loom.time_loop, loom.unrolled = 1 : i64}
// TWO: return %[[E]]#1

// Factor 4: four steps per iteration (offsets i, i+1, i+2, i+3), then the
// T mod 4 remaining steps.
// FOUR-LABEL: func.func @rnn
// FOUR: %[[T:.*]] = tensor.dim %arg0, %c0
// FOUR: %[[REM:.*]] = arith.remsi %[[T]], %c4
// FOUR: %[[MAIN:.*]] = arith.subi %[[T]], %[[REM]]
// FOUR: scf.for %[[I:.*]] = %c0 to %[[MAIN]] step %c4
// FOUR: tensor.extract_slice %arg0[%[[I]], 0, 0]
// FOUR: %[[I1:.*]] = arith.addi %[[I]], %c1
// FOUR: tensor.extract_slice %arg0[%[[I1]], 0, 0]
// FOUR: %[[I2:.*]] = arith.addi %[[I]], %c2
// FOUR: tensor.extract_slice %arg0[%[[I2]], 0, 0]
// FOUR: %[[I3:.*]] = arith.addi %[[I]], %c3
// FOUR: tensor.extract_slice %arg0[%[[I3]], 0, 0]
// FOUR-NOT: tensor.extract_slice %arg0
// FOUR: } {loom.time_loop, loom.unrolled = 4 : i64}
// FOUR: scf.for %{{.*}} = %[[MAIN]] to %[[T]] step %c1
// FOUR: } {loom.time_loop, loom.unrolled = 1 : i64}

// The compiler's choice for this small step (64 weight elements): 2.
// DEFAULT-LABEL: func.func @rnn
// DEFAULT: } {loom.time_loop, loom.unrolled = 2 : i64}
// DEFAULT: } {loom.time_loop, loom.unrolled = 1 : i64}
func.func @rnn(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x?x8xf32> {
  %ys, %hT = loom.scan ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %a = loom.linear %h, %w : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
    %s = loom.add %a, %x : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    %h1 = loom.tanh %s : tensor<?x8xf32>
    loom.yield %h1, %h1 : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %ys : tensor<?x?x8xf32>
}

// A reversed scan (as the backward scans of a gradient) unrolls the same
// way: each unrolled step reads slice T-1-(i+k).
// FOUR-LABEL: func.func @reversed
// FOUR: %[[T:.*]] = tensor.dim %arg0, %c0
// FOUR: %[[MAIN:.*]] = arith.subi %[[T]], %{{.*}}
// FOUR: scf.for %[[I:.*]] = %c0 to %[[MAIN]] step %c4
// FOUR: %[[LAST:.*]] = arith.subi %[[T]], %c1
// FOUR: %[[T0:.*]] = arith.subi %[[LAST]], %[[I]]
// FOUR: tensor.extract_slice %arg0[%[[T0]], 0, 0]
// FOUR: arith.cmpi slt
// FOUR: %[[I1:.*]] = arith.addi %[[I]], %c1
// FOUR: %[[T1:.*]] = arith.subi %[[LAST]], %[[I1]]
// FOUR: tensor.extract_slice %arg0[%[[T1]], 0, 0]
// FOUR: %[[I3:.*]] = arith.addi %[[I]], %c3
// FOUR: %[[T3:.*]] = arith.subi %[[LAST]], %[[I3]]
// FOUR: tensor.extract_slice %arg0[%[[T3]], 0, 0]
// FOUR: } {loom.time_loop, loom.unrolled = 4 : i64}
// FOUR: scf.for %{{.*}} = %[[MAIN]] to %[[T]] step %c1
// FOUR: } {loom.time_loop, loom.unrolled = 1 : i64}
// REMARK: unroll-time.mlir:[[@LINE+-29]]:14: remark: time loop unrolled by 4 (loom-unroll-time)
// REMARK: unroll-time.mlir:[[@LINE+3]]:14: remark: time loop unrolled by 4 (loom-unroll-time)
// REMARK-NOT: remark
func.func @reversed(%xs: tensor<?x?x8xf32>, %h0: tensor<?x8xf32>, %len: tensor<?xi64>) -> tensor<?x8xf32> {
  %ys, %hT = loom.scan reverse ins(%xs : tensor<?x?x8xf32>) init(%h0 : tensor<?x8xf32>) lengths(%len : tensor<?xi64>) {
  ^bb0(%x: tensor<?x8xf32>, %h: tensor<?x8xf32>):
    %s = loom.add %h, %x : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
    %h1 = loom.tanh %s : tensor<?x8xf32>
    loom.yield %h1, %h1 : tensor<?x8xf32>, tensor<?x8xf32>
  } : tensor<?x?x8xf32>, tensor<?x8xf32>
  return %hT : tensor<?x8xf32>
}

// Loops that are not time loops are left alone.
// FOUR-LABEL: func.func @other_loop
// FOUR: scf.for
// FOUR-NOT: scf.for
// FOUR-NOT: loom.unrolled
// FOUR: return
func.func @other_loop(%n: index, %v: f32) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%a = %v) -> f32 {
    %b = arith.addf %a, %v : f32
    scf.yield %b : f32
  }
  return %r : f32
}
