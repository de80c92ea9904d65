//===- GradientCheckTest.cpp - autodiff against finite differences ----===//
//
// For models that exercise every differentiation rule (and the backward
// scan with lengths, several layers, both directions, initial states, tied
// weights, user cells, fused gate matmuls and training-mode dropout), the
// gradients loom-differentiate derives, run by the reference interpreter,
// match central finite differences of the loss, and the JIT-compiled
// gradient function matches the interpreter.
//
//===----------------------------------------------------------------------===//

#include "codegen/Jit.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"
#include "passes/Passes.h"
#include "reference/Interpreter.h"
#include "runtime/ModelBinding.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace loom;

namespace {

struct GradCase {
  const char *name;
  const char *source;
  /// The passes before the check: the autodiff rules alone, or (for the
  /// fused cases) the whole pipeline loom train and loom grad run: fusion
  /// and hoisting before loom-differentiate, merged weight gradients after.
  const char *pipeline = "loom-differentiate";
};

constexpr const char *kFused = kGradientPipeline;

const GradCase kCases[] = {
    {"lstm_lm_lengths_bidir", R"(
model M(vocab = 7, emb = 3, hidden = 4) {
  input tokens : i64[T, B]
  input targets : i64[T, B]
  input lengths : i64[B]
  x = encoder: embedding(tokens, vocab, emb)
  h, (h_n, c_n) = rnn: lstm(dropout(x, 0.3), hidden, layers = 2, bidirectional = true, lengths = lengths)
  logits = decoder: linear(h, vocab)
  output logits
  loss cross_entropy(logits, targets, ignore_index = 0)
})"},
    {"gru_sentiment", R"(
model M(vocab = 7, emb = 3, hidden = 4) {
  input tokens : i64[T, B]
  input labels : i64[B]
  input lengths : i64[B]
  x = embedding: embedding(tokens, vocab, emb)
  _, h_n = rnn: gru(x, hidden, bidirectional = true, lengths = lengths)
  logits = fc: linear(concat(h_n[0], h_n[1]), 3)
  output logits
  loss cross_entropy(logits, labels)
})"},
    {"relu_rnn_state_tied_batch_first", R"(
model M(vocab = 7, hidden = 4) {
  input tokens : i64[B, T]
  input targets : i64[B, T]
  input h0 : f32[2, B, 4]
  x = encoder: embedding(tokens, vocab, hidden)
  y, h_n = rnn: rnn(x, hidden, layers = 2, nonlinearity = relu, state = h0, batch_first = true)
  logits = dec: linear(y, vocab, weight = encoder.weight)
  output logits
  loss cross_entropy(logits, targets)
})"},
    {"lstm_proj", R"(
model M(vocab = 7, emb = 3, hidden = 5) {
  input tokens : i64[T, B]
  input targets : i64[T, B]
  x = encoder: embedding(tokens, vocab, emb)
  y, (h_n, c_n) = rnn: lstm(x, hidden, proj_size = 2, layers = 2)
  logits = decoder: linear(y, vocab)
  output logits
  loss cross_entropy(logits, targets)
})"},
    {"peephole_user_cell", R"(
cell PeepholeLSTM(x[I], h[H], c[H]) -> (h, c) {
  param W[4H, I], U[4H, H], b[4H], p_i[H], p_f[H], p_o[H]
  i, f, g, o = split(W @ x + U @ h + b, 4)
  i = sigmoid(i + p_i * c)
  f = sigmoid(f + p_f * c)
  c = f * c + i * tanh(g)
  h = sigmoid(o + p_o * c) * tanh(c)
}
model M(vocab = 7, emb = 3, hidden = 4) {
  input tokens : i64[T, B]
  input targets : i64[T, B]
  input lengths : i64[B]
  x = encoder: embedding(tokens, vocab, emb)
  y, (h_n, c_n) = rnn: PeepholeLSTM(x, hidden, lengths = lengths)
  logits = fc: linear(y, vocab)
  output logits
  loss cross_entropy(logits, targets)
})"},
    {"elementwise_mix", R"(
cell Mix(x[I], h[H]) -> (h) {
  param W[2H, I], U[H, H], b[H], s[H]
  a, z = split(W @ x, 2)
  h = relu(a - U @ h) * sigmoid(z) / (1 + exp(-b * s)) + -h * 0.5
}
model M(vocab = 5, hidden = 3) {
  input x : f32[T, B, 2]
  input targets : i64[T, B]
  y, h_n = rnn: Mix(x, hidden)
  logits = fc: linear(concat(y, y * y), vocab)
  output logits
  loss cross_entropy(logits, targets)
})"},
    {"log_softmax_nll", R"(
model M(vocab = 6, hidden = 4) {
  input x : f32[T, B, 3]
  input targets : i64[T, B]
  y, h_n = rnn: gru(x, hidden)
  z = fc: linear(y, vocab)
  logp = log_softmax(z)
  output logp
  loss nll(logp, targets, ignore_index = 2)
})"},
    {"sqrt_abs_user_cell", R"(
cell NormCell(x[I], h[H]) -> (h) {
  param W[H, I], U[H, H], b[H]
  a = W @ x + U @ h + b
  h = tanh(a) / sqrt(abs(a) + 1)
}
model M(vocab = 6, hidden = 4) {
  input x : f32[T, B, 3]
  input targets : i64[T, B]
  y, h_n = rnn: NormCell(x, hidden, layers = 2)
  logits = fc: linear(y, vocab)
  output logits
  loss cross_entropy(logits, targets)
})"},
    {"softmax_mse", R"(
model M(hidden = 4) {
  input x : f32[T, B, 3]
  input want : f32[T, B, 5]
  y, h_n = rnn: rnn(x, hidden)
  z = fc: linear(y, 5)
  p = softmax(z)
  output p
  loss mse(p * 3, want)
})"},
    {"layernorm_after_lstm", R"(
model M(vocab = 6, hidden = 4) {
  input x : f32[T, B, 3]
  input targets : i64[T, B]
  y, (h_n, c_n) = rnn: lstm(x, hidden)
  n = norm: layernorm(y)
  logits = fc: linear(n, vocab)
  output logits
  loss cross_entropy(logits, targets)
})"},
    {"per_gate_lstm_fused", R"(
cell GateLSTM(x[I], h[H], c[H]) -> (h, c) {
  param Wi[H, I], Wf[H, I], Wg[H, I], Wo[H, I]
  param Ui[H, H], Uf[H, H], Ug[H, H], Uo[H, H], bi[H], bf[H], bg[H], bo[H]
  i = sigmoid(Wi @ x + Ui @ h + bi)
  f = sigmoid(Wf @ x + Uf @ h + bf)
  g = tanh(Wg @ x + Ug @ h + bg)
  o = sigmoid(Wo @ x + Uo @ h + bo)
  c = f * c + i * g
  h = o * tanh(c)
}
model M(vocab = 7, emb = 3, hidden = 4) {
  input tokens : i64[T, B]
  input targets : i64[T, B]
  input lengths : i64[B]
  x = encoder: embedding(tokens, vocab, emb)
  y, (h_n, c_n) = rnn: GateLSTM(x, hidden, bidirectional = true, lengths = lengths)
  logits = fc: linear(y, vocab)
  output logits
  loss cross_entropy(logits, targets)
})",
     kFused},
    // W multiplies the input twice and the state once: it is part of both
    // fused weights, and its gradient sums the adjoints of all its slices.
    {"tied_gate_weights_fused", R"(
cell Tied(x[I], h[H]) -> (h) {
  param W[H, I], V[H, I], U[H, H]
  a = W @ x + U @ h
  z = sigmoid(W @ x - V @ x + W @ h)
  h = tanh(a) * z + (1 - z) * h
}
model M(vocab = 5, hidden = 3) {
  input x : f32[T, B, 3]
  input targets : i64[T, B]
  y, h_n = rnn: Tied(x, hidden, layers = 2)
  logits = fc: linear(y, vocab)
  output logits
  loss cross_entropy(logits, targets)
})",
     kFused},
};

float randomFloat(std::mt19937 &rng, float scale) {
  return std::uniform_real_distribution<float>(-scale, scale)(rng);
}

class GradientCheck : public ::testing::TestWithParam<GradCase> {};

TEST_P(GradientCheck, MatchesFiniteDifferences) {
  const GradCase &c = GetParam();
  mlir::DialectRegistry registry;
  registerCodegen(registry);
  mlir::MLIRContext context(registry);
  auto source =
      parseSource(llvm::MemoryBuffer::getMemBufferCopy(c.source, "m.loom"));
  ASSERT_TRUE(source);
  auto module = generate(context, *source);
  ASSERT_TRUE(module);
  ASSERT_TRUE(mlir::succeeded(runPipeline(*module, c.pipeline)));
  if (std::string(c.pipeline) == kFused) {
    // The case is not vacuous: the fused matmuls are there.
    bool fused = false;
    module->walk([&](ConcatOp op) { fused |= !op->getParentOfType<ScanOp>(); });
    EXPECT_TRUE(fused);
    // And the backward scans' weight gradients are merged after them.
    bool merged = false, perStep = false;
    module->walk([&](LinearWeightGradOp op) {
      (op->getParentOfType<ScanOp>() ? perStep : merged) = true;
    });
    EXPECT_TRUE(merged);
    EXPECT_FALSE(perStep);
  }
  auto lossFn = module->lookupSymbol<mlir::func::FuncOp>("M_loss");
  auto gradFn = module->lookupSymbol<mlir::func::FuncOp>("M_grad");
  ASSERT_TRUE(lossFn && gradFn);

  // Inputs: T = 4, B = 3; ids in range, lengths 1..T.
  std::mt19937 rng(7);
  const int64_t T = 4, B = 3;
  std::vector<reference::Array> inputs;
  for (const ModelPort &p : signatureOf(gradFn).inputs) {
    std::vector<int64_t> shape;
    for (const std::string &d : p.dims)
      shape.push_back(d == "T" ? T : d == "B" ? B : std::stoll(d));
    reference::Array a;
    a.shape = shape;
    a.isInt = p.isInt;
    int64_t n = a.numElements();
    if (p.name == "lengths") {
      a.i = {T, 1, 3};
    } else if (p.name == kDropoutKeyName) {
      // Training-mode dropout (seed 7, step 3): its counter-based masks are
      // the same in every evaluation, so finite differences apply.
      a.i = {7, 3};
    } else if (p.isInt) {
      int64_t classes = p.name == "labels" ? 3 : 5;
      if (p.name == "targets" &&
          (std::string(c.name) == "log_softmax_nll" ||
           std::string(c.name).rfind("layernorm", 0) == 0 ||
           std::string(c.name).rfind("sqrt_abs", 0) == 0))
        classes = 6;
      for (int64_t k = 0; k < n; ++k)
        a.i.push_back(
            std::uniform_int_distribution<int64_t>(0, classes - 1)(rng));
    } else {
      for (int64_t k = 0; k < n; ++k)
        a.f.push_back(randomFloat(rng, 1.0f));
    }
    inputs.push_back(a);
  }
  reference::ParamMap params;
  for (const ParamInfo &p : parametersOf(gradFn)) {
    reference::Array a = reference::Array::floats(p.shape);
    for (float &v : a.f)
      v = randomFloat(rng, 0.8f);
    params[p.name] = a;
  }

  std::vector<reference::Array> grads;
  std::string error;
  ASSERT_TRUE(reference::run(gradFn, inputs, params, grads, error)) << error;
  auto loss = [&](const reference::ParamMap &ps) {
    std::vector<reference::Array> out;
    std::string err;
    EXPECT_TRUE(reference::run(lossFn, inputs, ps, out, err)) << err;
    return double(out[0].f[0]);
  };
  double base = loss(params);
  EXPECT_NEAR(grads[0].f[0], base, 1e-6);

  // The JIT-compiled gradient function computes the same numbers.
  auto jit = JitModel::compile(*module, "M_grad", TargetOptions(), error);
  ASSERT_TRUE(jit) << error;
  std::vector<BufferRef> in, w, out;
  for (reference::Array &a : inputs)
    in.push_back({a.isInt ? static_cast<void *>(a.i.data())
                          : static_cast<void *>(a.f.data()),
                  a.shape});
  for (const std::string &name : jit->parameterNames())
    w.push_back({params[name].f.data(), params[name].shape});
  std::vector<reference::Array> compiled;
  for (const reference::Array &g : grads)
    compiled.push_back(reference::Array::floats(g.shape));
  for (reference::Array &c : compiled)
    out.push_back({c.f.data(), c.shape});
  ASSERT_TRUE(jit->run(in, w, out, error)) << error;
  for (size_t k = 0; k < grads.size(); ++k)
    for (size_t i = 0; i < grads[k].f.size(); ++i)
      ASSERT_NEAR(compiled[k].f[i], grads[k].f[i],
                  1e-6 + 1e-3 * std::fabs(grads[k].f[i]))
          << "JIT result " << k << " element " << i;

  ModelSignature sig = signatureOf(gradFn);
  int checked = 0;
  for (size_t k = 1; k < grads.size(); ++k) {
    if (gradFn.getResultAttr(k, kCarryAttr))
      continue; // a carried state, not a gradient
    const std::string &name = sig.outputs[k].name;
    reference::Array &p = params[name];
    ASSERT_EQ(grads[k].shape, p.shape) << name;
    // A few elements of every parameter, including the first and last.
    std::vector<size_t> picks{0, p.f.size() - 1, p.f.size() / 2};
    for (size_t idx : picks) {
      const float eps = 1e-2f;
      float saved = p.f[idx];
      p.f[idx] = saved + eps;
      double up = loss(params);
      p.f[idx] = saved - eps;
      double down = loss(params);
      p.f[idx] = saved;
      double fd = (up - down) / (2 * eps);
      double ad = grads[k].f[idx];
      EXPECT_NEAR(ad, fd, 2e-3 + 2e-2 * std::fabs(fd))
          << name << "[" << idx << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, GradientCheck, ::testing::ValuesIn(kCases),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

} // namespace
