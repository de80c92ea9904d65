// RUN: loom-opt %s -loom-differentiate -loom-train-step="optimizer=sgd momentum=true nesterov=true weight-decay=true clip=true l1=true" | FileCheck %s --check-prefix=SGD
// RUN: loom-opt %s -loom-differentiate -loom-train-step="optimizer=adamw weight-decay=true" | FileCheck %s --check-prefix=ADAMW
// RUN: loom-opt %s -loom-differentiate -loom-train-step="optimizer=adam" | FileCheck %s --check-prefix=ADAM
// RUN: not loom-opt %s -loom-differentiate -loom-train-step="optimizer=rmsprop" 2>&1 | FileCheck %s --check-prefix=BAD

// The step: the gradient function's body, then the L1 penalty, the global
// norm clip and the update, with the optimizer's numbers as named scalar
// arguments, its state as `optimizer.*` params, and the carried state last.

// SGD-LABEL: func.func @M_step
// SGD-SAME: loom.name = "h0"
// SGD-SAME: %[[L1:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "l1"}
// SGD-SAME: %[[MAX:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "max_norm"}
// SGD-SAME: %[[WD:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "weight_decay"}
// SGD-SAME: %[[MDECAY:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "momentum_decay"}
// SGD-SAME: %[[MSCALE:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "momentum_scale"}
// SGD-SAME: %[[MOM:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "momentum"}
// SGD-SAME: %[[LR:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "lr"}
// SGD-SAME: -> (tensor<f32> {loom.name = "loss"}, tensor<f32> {loom.name = "grad_norm"}, tensor<4x8xf32> {loom.name = "fc.weight"}, tensor<4x8xf32> {loom.name = "optimizer.fc.weight.momentum_buffer"}, tensor<?x4xf32> {loom.carry, loom.name = "h0"})
// SGD-SAME: attributes {loom.step}
// SGD: %[[W:.*]] = loom.param "fc.weight"
// SGD: %[[Y:.*]] = loom.linear
// SGD: %[[LOSS:.*]] = loom.cross_entropy
// SGD: %[[G:.*]] = loom.linear_weight_grad
//   L1: loss + l1·Σ|w|, gradient + l1·sign(w)
// SGD: %[[ABS:.*]] = loom.abs %[[W]]
// SGD: %[[PEN:.*]] = loom.reduce_sum %[[ABS]] : tensor<4x8xf32> -> tensor<f32>
// SGD: %[[SIGN:.*]] = loom.sign %[[W]]
// SGD: %[[L1G:.*]] = loom.mul %[[L1]], %[[SIGN]]
// SGD: %[[G1:.*]] = loom.add %[[G]], %[[L1G]]
// SGD: %[[L1L:.*]] = loom.mul %[[L1]], %[[PEN]]
// SGD: %[[TOTAL:.*]] = loom.add %[[LOSS]], %[[L1L]]
//   clip_grad_norm_: g · min(max_norm / (‖g‖ + 1e-6), 1)
// SGD: %[[SQ:.*]] = loom.mul %[[G1]], %[[G1]]
// SGD: %[[SUM:.*]] = loom.reduce_sum %[[SQ]]
// SGD: %[[NORM:.*]] = loom.sqrt %[[SUM]]
// SGD: %[[EPS:.*]] = arith.constant dense<9.99999997E-7>
// SGD: %[[DEN:.*]] = loom.add %[[NORM]], %[[EPS]]
// SGD: %[[COEF:.*]] = loom.div %[[MAX]], %[[DEN]]
// SGD: %[[ONE:.*]] = arith.constant dense<1.000000e+00>
// SGD: %[[CLAMP:.*]] = loom.minimum %[[COEF]], %[[ONE]]
// SGD: %[[G2:.*]] = loom.mul %[[G1]], %[[CLAMP]]
//   momentum: d = g + wd·w; buf = buf·momentum_decay + d·momentum_scale; Nesterov d + momentum·buf
// SGD: %[[WDW:.*]] = loom.mul %[[WD]], %[[W]]
// SGD: %[[D:.*]] = loom.add %[[G2]], %[[WDW]]
// SGD: %[[BUF:.*]] = loom.param "optimizer.fc.weight.momentum_buffer"
// SGD: %[[B1:.*]] = loom.mul %[[BUF]], %[[MDECAY]]
// SGD: %[[B2:.*]] = loom.mul %[[D]], %[[MSCALE]]
// SGD: %[[NBUF:.*]] = loom.add %[[B1]], %[[B2]]
// SGD: %[[N1:.*]] = loom.mul %[[NBUF]], %[[MOM]]
// SGD: %[[ND:.*]] = loom.add %[[D]], %[[N1]]
// SGD: %[[STEP:.*]] = loom.mul %[[LR]], %[[ND]]
// SGD: %[[NEW:.*]] = loom.sub %[[W]], %[[STEP]]
// SGD: return %[[TOTAL]], %[[NORM]], %[[NEW]], %[[NBUF]], %[[Y]]

// AdamW: decoupled decay first, then Adam's moments and bias corrections.
// ADAMW-LABEL: func.func @M_step
// ADAMW-SAME: %[[DECAY:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "decay"}
// ADAMW-SAME: %[[BETA1:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "beta1"}
// ADAMW-SAME: %[[OMB1:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "one_minus_beta1"}
// ADAMW-SAME: %[[BETA2:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "beta2"}
// ADAMW-SAME: %[[OMB2:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "one_minus_beta2"}
// ADAMW-SAME: %[[BC2:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "bias_correction2_sqrt"}
// ADAMW-SAME: %[[EPS:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "eps"}
// ADAMW-SAME: %[[SS:arg[0-9]+]]: tensor<f32> {loom.dims = [], loom.name = "step_size"}
// ADAMW-SAME: {loom.name = "optimizer.fc.weight.exp_avg"}, tensor<4x8xf32> {loom.name = "optimizer.fc.weight.exp_avg_sq"}
// ADAMW: %[[W:.*]] = loom.param "fc.weight"
// ADAMW: %[[G:.*]] = loom.linear_weight_grad
// ADAMW: %[[WD:.*]] = loom.mul %[[W]], %[[DECAY]]
// ADAMW: %[[M:.*]] = loom.param "optimizer.fc.weight.exp_avg"
// ADAMW: %[[V:.*]] = loom.param "optimizer.fc.weight.exp_avg_sq"
// ADAMW: %[[M1:.*]] = loom.mul %[[M]], %[[BETA1]]
// ADAMW: %[[M2:.*]] = loom.mul %[[G]], %[[OMB1]]
// ADAMW: %[[NM:.*]] = loom.add %[[M1]], %[[M2]]
// ADAMW: %[[V1:.*]] = loom.mul %[[V]], %[[BETA2]]
// ADAMW: %[[V2:.*]] = loom.mul %[[G]], %[[OMB2]]
// ADAMW: %[[V3:.*]] = loom.mul %[[V2]], %[[G]]
// ADAMW: %[[NV:.*]] = loom.add %[[V1]], %[[V3]]
// ADAMW: %[[R:.*]] = loom.sqrt %[[NV]]
// ADAMW: %[[R2:.*]] = loom.div %[[R]], %[[BC2]]
// ADAMW: %[[DEN:.*]] = loom.add %[[R2]], %[[EPS]]
// ADAMW: %[[Q:.*]] = loom.div %[[NM]], %[[DEN]]
// ADAMW: %[[U:.*]] = loom.mul %[[SS]], %[[Q]]
// ADAMW: %[[NEW:.*]] = loom.sub %[[WD]], %[[U]]
// ADAMW: return %{{.*}}, %[[NEW]], %[[NM]], %[[NV]]

// Adam without weight decay: no decay, no L2 term.
// ADAM-LABEL: func.func @M_step
// ADAM-NOT: "decay"
// ADAM-NOT: "weight_decay"
// ADAM: loom.param "optimizer.fc.weight.exp_avg_sq"

// BAD: error: loom-train-step: unknown optimizer 'rmsprop' (expected sgd, adam or adamw)

func.func @M_loss(%x: tensor<?x8xf32>, %t: tensor<?xi64>, %h: tensor<?x4xf32> {loom.name = "h0"}) -> (tensor<f32> {loom.name = "loss"}, tensor<?x4xf32> {loom.name = "h0", loom.carry}) attributes {loom.loss} {
  %w = loom.param "fc.weight" : tensor<4x8xf32>
  %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
  %l = loom.cross_entropy %y, %t {ignore_index = -100 : i64} : tensor<?x4xf32>, tensor<?xi64> -> tensor<f32>
  return %l, %y : tensor<f32>, tensor<?x4xf32>
}
