// RUN: loom-opt %s -split-input-file -verify-diagnostics
// Every verifier message of the loom dialect.

func.func @param_dynamic() {
  // expected-error @+1 {{parameter 'w' must have a static shape, got 'tensor<?x8xf32>'}}
  %w = loom.param "w" : tensor<?x8xf32>
  return
}

// -----

func.func @param_empty_name() {
  // expected-error @+1 {{parameter name must not be empty}}
  %w = loom.param "" : tensor<8xf32>
  return
}

// -----

func.func @zeros_sizes(%b: index) {
  // expected-error @+1 {{expects 1 size operands for 'tensor<?x16xf32>', got 2}}
  %z = loom.zeros %b, %b : tensor<?x16xf32>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{weight must be a matrix [out, in], got 'tensor<8xf32>'}}
  %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @linear_input_rank(%x: tensor<f32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{input must have rank at least 1}}
  %y = loom.linear %x, %w : tensor<f32>, tensor<4x8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @linear_mismatch(%x: tensor<?x7xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{input feature size 7 does not match weight 'tensor<4x8xf32>' (expected [out, 7])}}
  %y = loom.linear %x, %w : tensor<?x7xf32>, tensor<4x8xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @linear_result(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result dimension 1 is 5 but should be 4 (result type 'tensor<?x5xf32>')}}
  %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<?x5xf32>
  return
}

// -----

func.func @linear_result_rank(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result type 'tensor<4xf32>' should have rank 2}}
  %y = loom.linear %x, %w : tensor<?x8xf32>, tensor<4x8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @add_broadcast(%a: tensor<?x16xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{operand shapes do not broadcast: 'tensor<?x16xf32>' and 'tensor<8xf32>' (trailing dimensions must be equal)}}
  %r = loom.add %a, %b : tensor<?x16xf32>, tensor<8xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @split_dynamic(%a: tensor<?x?xf32>) {
  // expected-error @+1 {{the split dimension must be static}}
  %x, %y = loom.split %a : tensor<?x?xf32> -> tensor<?x?xf32>, tensor<?x?xf32>
  return
}

// -----

func.func @split_uneven(%a: tensor<?x10xf32>) {
  // expected-error @+1 {{cannot split size 10 into 3 equal parts}}
  %x, %y, %z = loom.split %a : tensor<?x10xf32> -> tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x3xf32>
  return
}

// -----

func.func @split_none(%a: tensor<?x10xf32>) {
  // expected-error @+1 {{must have at least one result}}
  "loom.split"(%a) : (tensor<?x10xf32>) -> ()
  return
}

// -----

func.func @split_scalar(%a: tensor<f32>) {
  // expected-error @+1 {{input must have rank at least 1}}
  %x = loom.split %a : tensor<f32> -> tensor<f32>
  return
}

// -----

func.func @concat_rank(%a: tensor<?x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{inputs must have the same rank, got 'tensor<?x8xf32>' and 'tensor<8xf32>'}}
  %r = loom.concat %a, %b : tensor<?x8xf32>, tensor<8xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<3x8xf32>, %b: tensor<4x8xf32>) {
  // expected-error @+1 {{inputs differ in dimension 0: 'tensor<3x8xf32>' and 'tensor<4x8xf32>'}}
  %r = loom.concat %a, %b : tensor<3x8xf32>, tensor<4x8xf32> -> tensor<3x16xf32>
  return
}

// -----

func.func @concat_dynamic(%a: tensor<3x?xf32>) {
  // expected-error @+1 {{the concatenated dimension must be static}}
  %r = loom.concat %a, %a : tensor<3x?xf32>, tensor<3x?xf32> -> tensor<3x?xf32>
  return
}

// -----

func.func @concat_none() {
  // expected-error @+1 {{needs at least one input}}
  %r = "loom.concat"() : () -> tensor<3xf32>
  return
}

// -----

func.func @concat_scalar(%a: tensor<f32>) {
  // expected-error @+1 {{inputs must have rank at least 1}}
  %r = loom.concat %a : tensor<f32> -> tensor<f32>
  return
}

// -----

func.func @stack_types(%a: tensor<?x8xf32>, %b: tensor<?x9xf32>) {
  // expected-error @+1 {{inputs must all have the same type, got 'tensor<?x8xf32>' and 'tensor<?x9xf32>'}}
  %r = loom.stack %a, %b : tensor<?x8xf32>, tensor<?x9xf32> -> tensor<2x?x8xf32>
  return
}

// -----

func.func @stack_none() {
  // expected-error @+1 {{needs at least one input}}
  %r = "loom.stack"() : () -> tensor<0xf32>
  return
}

// -----

func.func @index_range(%a: tensor<2x?x8xf32>) {
  // expected-error @+1 {{index 2 is out of range for 'tensor<2x?x8xf32>'}}
  %r = loom.index %a[2] : tensor<2x?x8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @index_scalar(%a: tensor<f32>) {
  // expected-error @+1 {{input must have rank at least 1}}
  %r = loom.index %a[0] : tensor<f32> -> tensor<f32>
  return
}

// -----

func.func @transpose_len(%a: tensor<?x?x8xf32>) {
  // expected-error @+1 {{permutation has 2 entries but the input has rank 3}}
  %r = loom.transpose %a [1, 0] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  return
}

// -----

func.func @transpose_perm(%a: tensor<?x?x8xf32>) {
  // expected-error @+1 {{permutation must be a permutation of 0..rank-1}}
  %r = loom.transpose %a [1, 1, 2] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
  return
}

// -----

func.func @embedding_rank(%i: tensor<?x?xi64>, %w: tensor<100xf32>) {
  // expected-error @+1 {{weight must be a matrix [vocab, dim], got 'tensor<100xf32>'}}
  %r = loom.embedding %i, %w : tensor<?x?xi64>, tensor<100xf32> -> tensor<?x?x100xf32>
  return
}

// -----

func.func @layernorm_weight(%x: tensor<?x8xf32>, %w: tensor<7xf32>) {
  // expected-error @+1 {{weight and bias must have shape [8], got 'tensor<7xf32>'}}
  %r = loom.layernorm %x, %w, %w : tensor<?x8xf32>, tensor<7xf32>, tensor<7xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @layernorm_eps(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %r = loom.layernorm %x, %w, %w {epsilon = 0.0 : f32} : tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @layernorm_scalar(%x: tensor<f32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{input must have rank at least 1}}
  %r = loom.layernorm %x, %w, %w : tensor<f32>, tensor<8xf32>, tensor<8xf32> -> tensor<f32>
  return
}

// -----

func.func @dropout_p(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{probability must be in [0, 1), got 1}}
  %r = loom.dropout %x {p = 1.0 : f32} : tensor<?x8xf32>
  return
}

// -----

func.func @dropout_key(%x: tensor<?x8xf32>, %k: tensor<3xi64>) {
  // expected-error @+1 {{key must be tensor<2xi64> ([seed, step]), got 'tensor<3xi64>'}}
  %r = loom.dropout %x key(%k : tensor<3xi64>) {p = 0.5 : f32} : tensor<?x8xf32>
  return
}

// -----

func.func @dropout_stream(%x: tensor<?x8xf32>, %k: tensor<2xi64>) {
  // expected-error @+1 {{stream must be non-negative, got -1}}
  %r = loom.dropout %x key(%k : tensor<2xi64>) {p = 0.5 : f32, stream = -1 : i64} : tensor<?x8xf32>
  return
}

// -----

func.func @minimum_shapes(%a: tensor<?x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{operand shapes do not broadcast: 'tensor<?x8xf32>' and 'tensor<4xf32>' (trailing dimensions must be equal)}}
  %r = loom.minimum %a, %b : tensor<?x8xf32>, tensor<4xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @scan_no_input(%h: tensor<?x16xf32>) {
  // expected-error @+1 {{needs at least one input sequence}}
  %hT = "loom.scan"(%h) <{operandSegmentSizes = array<i32: 0, 1, 0>}> ({
  ^bb0(%s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  }) : (tensor<?x16xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @scan_args(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{body must take 2 arguments (one step slice per input, then the states), got 1}}
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_results(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>, %c: tensor<?x16xf32>) {
  // expected-error @+1 {{has 1 results but needs at least one per state (2)}}
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h, %c : tensor<?x16xf32>, tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x16xf32>, %t: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_seq_rank(%x: tensor<?xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{input 0 must be a sequence [T, B, ...], got 'tensor<?xf32>'}}
  %hT = loom.scan ins(%x : tensor<?xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<f32>, %s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_lengths_differ(%x: tensor<3x?x8xf32>, %y: tensor<4x?x8xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{input sequences have different lengths}}
  %hT = loom.scan ins(%x, %y : tensor<3x?x8xf32>, tensor<4x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%a: tensor<?x8xf32>, %b: tensor<?x8xf32>, %s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_step_type(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{body argument 0 must be the step slice 'tensor<?x8xf32>' of input 'tensor<?x?x8xf32>', got 'tensor<?x9xf32>'}}
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x9xf32>, %s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_state_type(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{body argument 1 must have the type of state 0 ('tensor<?x16xf32>'), got 'tensor<?x15xf32>'}}
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x15xf32>):
    loom.yield %h : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_yield_count(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>) {
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x16xf32>):
    // expected-error @+1 {{yields 2 values but the scan has 1 results (0 outputs, then 1 states)}}
    loom.yield %s, %s : tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_output_type(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{result 0 must stack output 'tensor<?x16xf32>' over time, got 'tensor<?x?x17xf32>'}}
  %ys, %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x16xf32>):
    loom.yield %s, %s : tensor<?x16xf32>, tensor<?x16xf32>
  } : tensor<?x?x17xf32>, tensor<?x16xf32>
  return
}

// -----

func.func @scan_new_state(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>, %o: tensor<?x15xf32>) {
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x16xf32>):
    // expected-error @+1 {{new state 0 has type 'tensor<?x15xf32>' but the state has type 'tensor<?x16xf32>'}}
    loom.yield %o : tensor<?x15xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @scan_final_state(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>) {
  // expected-error @+1 {{final state result 0 must have the state type 'tensor<?x16xf32>'}}
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<4x16xf32>
  return
}

// -----

func.func @scan_lengths_rank(%x: tensor<?x?x8xf32>, %h: tensor<?x16xf32>, %l: tensor<?x?xi64>) {
  // expected-error @+1 {{lengths must be a vector [B], got 'tensor<?x?xi64>'}}
  %hT = loom.scan ins(%x : tensor<?x?x8xf32>) init(%h : tensor<?x16xf32>) lengths(%l : tensor<?x?xi64>) {
  ^bb0(%xs: tensor<?x8xf32>, %s: tensor<?x16xf32>):
    loom.yield %s : tensor<?x16xf32>
  } : tensor<?x16xf32>
  return
}

// -----

func.func @ce_classes(%l: tensor<?x?xf32>, %t: tensor<?xi64>) {
  // expected-error @+1 {{logits must end in a static class dimension, got 'tensor<?x?xf32>'}}
  %r = loom.cross_entropy %l, %t : tensor<?x?xf32>, tensor<?xi64> -> tensor<f32>
  return
}

// -----

func.func @ce_targets(%l: tensor<?x4xf32>, %t: tensor<?x?xi64>) {
  // expected-error @+1 {{targets 'tensor<?x?xi64>' must have the shape of the logits 'tensor<?x4xf32>' without the class dimension}}
  %r = loom.cross_entropy %l, %t : tensor<?x4xf32>, tensor<?x?xi64> -> tensor<f32>
  return
}

// -----

func.func @ce_grad_type(%l: tensor<?x4xf32>, %t: tensor<?xi64>, %d: tensor<f32>) {
  // expected-error @+1 {{result must have the type of the logits}}
  %r = loom.cross_entropy_grad %l, %t, %d : tensor<?x4xf32>, tensor<?xi64>, tensor<f32> -> tensor<?x5xf32>
  return
}

// -----

func.func @ce_grad_rank(%l: tensor<?x4xf32>, %t: tensor<?x?xi64>, %d: tensor<f32>) {
  // expected-error @+1 {{targets 'tensor<?x?xi64>' must have one dimension less than the logits 'tensor<?x4xf32>'}}
  %r = loom.cross_entropy_grad %l, %t, %d : tensor<?x4xf32>, tensor<?x?xi64>, tensor<f32> -> tensor<?x4xf32>
  return
}

// -----

func.func @reduce_rank(%x: tensor<4xf32>) {
  // expected-error @+1 {{cannot reduce 'tensor<4xf32>' to the larger rank of 'tensor<2x4xf32>'}}
  %r = loom.reduce_sum %x : tensor<4xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @reduce_trailing(%x: tensor<?x4xf32>) {
  // expected-error @+1 {{result 'tensor<5xf32>' must be the trailing dimensions of 'tensor<?x4xf32>'}}
  %r = loom.reduce_sum %x : tensor<?x4xf32> -> tensor<5xf32>
  return
}

// -----

func.func @lwg_rank(%dy: tensor<?x4xf32>, %x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{output gradient 'tensor<?x4xf32>' and input 'tensor<?x?x8xf32>' must have the same rank}}
  %r = loom.linear_weight_grad %dy, %x : tensor<?x4xf32>, tensor<?x?x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @lwg_result(%dy: tensor<?x4xf32>, %x: tensor<?x8xf32>) {
  // expected-error @+1 {{result must be [4, 8], got 'tensor<8x4xf32>'}}
  %r = loom.linear_weight_grad %dy, %x : tensor<?x4xf32>, tensor<?x8xf32> -> tensor<8x4xf32>
  return
}

// -----

func.func @eg_rank(%ids: tensor<?xi64>, %dy: tensor<?x?x8xf32>) {
  // expected-error @+1 {{output gradient 'tensor<?x?x8xf32>' must have one dimension more than the ids 'tensor<?xi64>'}}
  %r = loom.embedding_grad %ids, %dy : tensor<?xi64>, tensor<?x?x8xf32> -> tensor<10x8xf32>
  return
}

// -----

func.func @eg_result(%ids: tensor<?xi64>, %dy: tensor<?x8xf32>) {
  // expected-error @+1 {{result must be a static [vocab, 8] table, got 'tensor<?x8xf32>'}}
  %r = loom.embedding_grad %ids, %dy : tensor<?xi64>, tensor<?x8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @slice_rank(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{input and result must have the same rank of at least 1}}
  %r = loom.slice %x[0] : tensor<?x8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @slice_range(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{slice [6, 6 + 4) is outside the last dimension of 'tensor<?x8xf32>'}}
  %r = loom.slice %x[6] : tensor<?x8xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @slice_lead(%x: tensor<3x8xf32>) {
  // expected-error @+1 {{leading dimensions must match}}
  %r = loom.slice %x[0] : tensor<3x8xf32> -> tensor<4x4xf32>
  return
}

// -----

func.func @mask_operands(%l: tensor<?x?xi64>, %x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{needs lengths [B] and a sequence [T, B, ...]}}
  %r = loom.length_mask %l, %x : tensor<?x?xi64>, tensor<?x?x8xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @mask_result(%l: tensor<?xi64>, %x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{result must be [T, B], got 'tensor<?x?x1xf32>'}}
  %r = loom.length_mask %l, %x : tensor<?xi64>, tensor<?x?x8xf32> -> tensor<?x?x1xf32>
  return
}

// -----

func.func @scale_rows(%x: tensor<3x8xf32>, %f: tensor<4xf32>) {
  // expected-error @+1 {{factors 'tensor<4xf32>' must have one entry per row of 'tensor<3x8xf32>'}}
  %r = loom.scale_rows %x, %f : tensor<3x8xf32>, tensor<4xf32>
  return
}

// -----

func.func @nll_targets(%l: tensor<?x4xf32>, %t: tensor<?x?xi64>) {
  // expected-error @+1 {{targets 'tensor<?x?xi64>' must have the shape of the log-probabilities 'tensor<?x4xf32>' without the class dimension}}
  %r = loom.nll %l, %t : tensor<?x4xf32>, tensor<?x?xi64> -> tensor<f32>
  return
}

// -----

func.func @nll_classes(%l: tensor<?x?xf32>, %t: tensor<?xi64>) {
  // expected-error @+1 {{log-probabilities must end in a static class dimension, got 'tensor<?x?xf32>'}}
  %r = loom.nll %l, %t : tensor<?x?xf32>, tensor<?xi64> -> tensor<f32>
  return
}

// -----

func.func @nll_grad_type(%l: tensor<?x4xf32>, %t: tensor<?xi64>, %d: tensor<f32>) {
  // expected-error @+1 {{result must have the type of the log-probabilities}}
  %r = loom.nll_grad %l, %t, %d : tensor<?x4xf32>, tensor<?xi64>, tensor<f32> -> tensor<?x5xf32>
  return
}
