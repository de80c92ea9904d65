//===- DifferentialTest.cpp - JIT vs reference interpreter ------------===//
//
// Generates random models (random user cells, some written per gate so that
// their matmuls are fused, and prelude cells, random layer options and
// sizes), compiles each with the JIT and compares it with the reference
// interpreter on random weights and inputs.
//
// LOOM_DIFF_SEED=<n> reproduces a run (the seed is printed); LOOM_DIFF_COUNT
// sets how many models (default 100).
//
//===----------------------------------------------------------------------===//

#include "codegen/Jit.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "passes/Passes.h"
#include "reference/Interpreter.h"
#include "runtime/ModelBinding.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>

using namespace loom;

namespace {

struct Case {
  std::string source;
  int64_t T, B, inputSize;
  bool batchFirst = false, withLengths = false, withState = false;
  int64_t stateRows = 0;
  std::vector<int64_t> stateSizes;
};

class Generator {
public:
  explicit Generator(uint64_t seed) : rng(seed) {}

  int64_t pick(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }
  bool coin() { return pick(0, 1) == 1; }

  /// A random elementwise expression over `names`, kept bounded by
  /// squashing functions so that values stay in a comparable range.
  std::string expr(const std::vector<std::string> &names, int depth) {
    if (depth == 0 || pick(0, 3) == 0)
      return names[pick(0, names.size() - 1)];
    switch (pick(0, 6)) {
    case 0:
      return "sigmoid(" + expr(names, depth - 1) + ")";
    case 1:
      return "tanh(" + expr(names, depth - 1) + ")";
    case 2:
      return "relu(" + expr(names, depth - 1) + ")";
    case 3:
      return "(" + expr(names, depth - 1) + " + " + expr(names, depth - 1) +
             ")";
    case 4:
      return "(" + expr(names, depth - 1) + " - " + expr(names, depth - 1) +
             ")";
    case 5:
      return "(" + expr(names, depth - 1) + " * " + expr(names, depth - 1) +
             ")";
    default:
      return "(0.5 * " + expr(names, depth - 1) + ")";
    }
  }

  Case make() {
    Case c;
    std::ostringstream os;
    int kind = pick(0, 5);
    int64_t H = pick(1, 12), P = pick(1, 12);
    std::string call;
    if (kind == 0) {
      // A random user cell with one or two states.
      // Gates from stacked weights and split, or written per gate with
      // their own weights (whose matmuls loom-fuse-gate-matmuls fuses).
      int states = pick(1, 2);
      int64_t k = pick(1, 4);
      bool perGate = coin();
      os << "cell Rand(x[I], h[H]" << (states == 2 ? ", c[H]" : "") << ") {\n";
      std::vector<std::string> gates;
      for (int64_t g = 0; g < k; ++g)
        gates.push_back("g" + std::to_string(g));
      if (perGate) {
        os << "  param p[H]";
        for (const std::string &g : gates)
          os << ", W" << g << "[H, I], U" << g << "[H, H], b" << g << "[H]";
        os << "\n";
        for (const std::string &g : gates)
          os << "  " << g << " = W" << g << " @ x + U" << g << " @ h + b" << g
             << "\n";
      } else {
        os << "  param W[" << k << "H, I], U[" << k << "H, H], b[" << k
           << "H], p[H]\n";
        os << "  ";
        for (int64_t g = 0; g < k; ++g)
          os << (g ? ", " : "") << gates[g];
        if (k == 1)
          os << " = W @ x + U @ h + b\n";
        else
          os << " = split(W @ x + U @ h + b, " << k << ")\n";
      }
      std::vector<std::string> names = gates;
      names.push_back("h");
      names.push_back("p");
      if (states == 2) {
        names.push_back("c");
        // Adding a gate keeps each state dependent on the step's input.
        os << "  c = tanh(" << expr(names, 3) << " + g0)\n";
        names.push_back("c");
      }
      os << "  h = tanh(" << expr(names, 3) << " + " << gates.back()
         << ")\n}\n";
      call = "Rand(x, " + std::to_string(H);
      c.stateSizes.assign(states, H);
    } else if (kind == 1) {
      call = "rnn(x, " + std::to_string(H) +
             (coin() ? ", nonlinearity = relu" : "");
      c.stateSizes = {H};
    } else if (kind == 2) {
      call = "lstm(x, " + std::to_string(H);
      c.stateSizes = {H, H};
    } else if (kind == 3) {
      call =
          "lstm(x, " + std::to_string(H) + ", proj_size = " + std::to_string(P);
      c.stateSizes = {P, H};
    } else {
      call = "gru(x, " + std::to_string(H);
      c.stateSizes = {H};
    }
    int64_t layers = pick(1, 3);
    bool bidir = coin();
    c.batchFirst = pick(0, 3) == 0;
    c.withLengths = coin();
    c.withState = pick(0, 2) == 0;
    c.T = pick(1, 7);
    c.B = pick(1, 5);
    c.inputSize = pick(1, 10);
    c.stateRows = layers * (bidir ? 2 : 1);
    os << "model M(i = " << c.inputSize << ") {\n";
    os << "  input x : f32[" << (c.batchFirst ? "B, T" : "T, B") << ", i]\n";
    if (c.withLengths)
      os << "  input lengths : i64[B]\n";
    std::vector<std::string> stateNames;
    if (c.withState)
      for (size_t k = 0; k < c.stateSizes.size(); ++k) {
        stateNames.push_back("s" + std::to_string(k));
        os << "  input " << stateNames.back() << " : f32[" << c.stateRows
           << ", B, " << c.stateSizes[k] << "]\n";
      }
    os << "  y, " << (c.stateSizes.size() == 2 ? "(a, b)" : "a")
       << " = rnn: " << call << ", layers = " << layers
       << ", bidirectional = " << (bidir ? "true" : "false")
       << ", batch_first = " << (c.batchFirst ? "true" : "false");
    if (c.withLengths)
      os << ", lengths = lengths";
    if (c.withState) {
      os << ", state = ";
      if (stateNames.size() == 1)
        os << stateNames[0];
      else
        os << "(" << stateNames[0] << ", " << stateNames[1] << ")";
    }
    os << ")\n";
    std::string out = "y";
    if (coin()) {
      os << "  z = fc: linear(y, " << pick(1, 6) << ")\n";
      out = coin() ? "z" : "y, z";
    }
    os << "  output " << out << ", a" << (c.stateSizes.size() == 2 ? ", b" : "")
       << "\n}\n";
    c.source = os.str();
    return c;
  }

  std::vector<float> values(int64_t n, float scale) {
    std::uniform_real_distribution<float> d(-scale, scale);
    std::vector<float> v(n);
    for (float &x : v)
      x = d(rng);
    return v;
  }

  std::mt19937_64 rng;
};

/// Weights of scale 1/sqrt(fan-in), as PyTorch's default initializations.
float fanInScale(const std::vector<int64_t> &shape) {
  return 1.0f / std::sqrt(float(shape.back()));
}

/// A test case's sizes, for SCOPED_TRACE.
std::string where(int64_t T, int64_t B, unsigned threads) {
  return "T = " + std::to_string(T) + ", B = " + std::to_string(B) +
         ", threads = " + std::to_string(threads);
}

int64_t product(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

reference::Array toArray(const Tensor &t) {
  reference::Array a;
  a.shape = t.shape;
  if (t.dtype == DType::I64) {
    a.isInt = true;
    a.i.assign(t.i64Data(), t.i64Data() + t.numElements());
  } else {
    a.f.assign(t.f32Data(), t.f32Data() + t.numElements());
  }
  return a;
}

/// Runs the compiled model on `inputs` and `weights` into outputs shaped
/// like the interpreter's `expected` results.
bool runJit(JitModel &jit, std::vector<Tensor> &inputs,
            std::map<std::string, Tensor> &weights,
            const std::vector<reference::Array> &expected,
            std::vector<Tensor> &actual, std::string &error) {
  std::vector<BufferRef> in, w, out;
  for (Tensor &t : inputs)
    in.push_back({t.data.data(), t.shape});
  for (const std::string &name : jit.parameterNames())
    w.push_back({weights[name].data.data(), weights[name].shape});
  for (const reference::Array &e : expected)
    actual.push_back(Tensor::zeros(DType::F32, e.shape));
  for (Tensor &t : actual)
    out.push_back({t.data.data(), t.shape});
  return jit.run(in, w, out, error);
}

TEST(Differential, JitMatchesInterpreterOnRandomModels) {
  uint64_t seed = std::chrono::steady_clock::now().time_since_epoch().count();
  if (const char *s = std::getenv("LOOM_DIFF_SEED"))
    seed = std::strtoull(s, nullptr, 10);
  int count = 100;
  if (const char *s = std::getenv("LOOM_DIFF_COUNT"))
    count = std::atoi(s);
  std::printf("differential test: seed %llu, %d models "
              "(reproduce with LOOM_DIFF_SEED=%llu)\n",
              (unsigned long long)seed, count, (unsigned long long)seed);
  Generator gen(seed);
  mlir::DialectRegistry registry;
  registerCodegen(registry);
  double worst = 0;
  for (int n = 0; n < count; ++n) {
    Case c = gen.make();
    SCOPED_TRACE("model " + std::to_string(n) + " (seed " +
                 std::to_string(seed) + "):\n" + c.source);
    mlir::MLIRContext context(registry);
    auto source = parseSource(
        llvm::MemoryBuffer::getMemBufferCopy(c.source, "rand.loom"));
    ASSERT_TRUE(source);
    auto module = generate(context, *source);
    ASSERT_TRUE(module);
    auto func = findModel(*module);
    ASSERT_TRUE(func.ok());

    // Inputs, in declaration order.
    std::map<std::string, Tensor> given;
    std::vector<int64_t> xShape =
        c.batchFirst ? std::vector<int64_t>{c.B, c.T, c.inputSize}
                     : std::vector<int64_t>{c.T, c.B, c.inputSize};
    given["x"] = Tensor::f32(xShape, gen.values(product(xShape), 1.0f));
    if (c.withLengths) {
      std::vector<int64_t> len(c.B);
      for (int64_t &l : len)
        l = gen.pick(1, c.T);
      given["lengths"] = Tensor::i64({c.B}, len);
    }
    if (c.withState)
      for (size_t k = 0; k < c.stateSizes.size(); ++k) {
        std::vector<int64_t> shape{c.stateRows, c.B, c.stateSizes[k]};
        given["s" + std::to_string(k)] =
            Tensor::f32(shape, gen.values(product(shape), 1.0f));
      }
    auto inputs = bindInputs(*func, given);
    ASSERT_TRUE(inputs.ok()) << inputs.error();
    std::map<std::string, Tensor> weights;
    // PyTorch-like scales (±1/√fan-in, at most 0.6): random cells with
    // larger weights can be chaotic (e.g. h = tanh(3·g1 + 2·g3) over three
    // bidirectional layers), where any rounding difference — std::tanh in
    // the interpreter against the compiled polynomial — grows past the
    // tolerance with time; that measures the model, not the compiler.
    for (const ParamInfo &p : parametersOf(*func))
      weights[p.name] = Tensor::f32(
          p.shape,
          gen.values(product(p.shape),
                     std::min(0.6f, 1.0f / std::sqrt(float(p.shape.back())))));

    // The oracle.
    reference::ParamMap refParams;
    for (auto &[name, t] : weights)
      refParams[name] = toArray(t);
    std::vector<reference::Array> refInputs, expected;
    for (const Tensor &t : *inputs)
      refInputs.push_back(toArray(t));
    std::string error;
    ASSERT_TRUE(reference::run(*func, refInputs, refParams, expected, error))
        << error;

    // The JIT.
    auto jit =
        JitModel::compile(*module, func->getName(), TargetOptions(), error);
    ASSERT_TRUE(jit) << error;
    std::vector<Tensor> actual;
    ASSERT_TRUE(runJit(*jit, *inputs, weights, expected, actual, error))
        << error;

    for (size_t k = 0; k < expected.size(); ++k) {
      const float *a = actual[k].f32Data();
      for (size_t i = 0; i < expected[k].f.size(); ++i) {
        double e = expected[k].f[i];
        double err = std::fabs(a[i] - e);
        worst = std::max(worst, err / (1e-5 + 1e-4 * std::fabs(e)));
        ASSERT_LE(err, 1e-5 + 1e-4 * std::fabs(e))
            << "output " << k << " element " << i << ": JIT " << a[i]
            << ", interpreter " << e;
      }
    }
  }
  std::printf("worst error: %.3g of the forward tolerance\n", worst);
}

/// One model compiled once, with fixed random weights, checked against the
/// interpreter on several inputs.
struct FixedModel {
  mlir::DialectRegistry registry;
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
  std::unique_ptr<JitModel> jit;
  std::map<std::string, Tensor> weights;
  reference::ParamMap refParams;

  /// Compiles `source`'s model (or, with a `pipeline` building it, the
  /// function `<model><suffix>`); weights uniform in ±scale(shape).
  void compile(const char *source, Generator &gen,
               const std::function<float(const std::vector<int64_t> &)> &scale,
               const char *pipeline = nullptr, const char *suffix = "",
               const TargetOptions &target = {}) {
    registerCodegen(registry);
    context = std::make_unique<mlir::MLIRContext>(registry);
    auto parsed =
        parseSource(llvm::MemoryBuffer::getMemBufferCopy(source, "m.loom"));
    ASSERT_TRUE(parsed);
    module = generate(*context, *parsed);
    ASSERT_TRUE(module);
    auto found = findModel(*module);
    ASSERT_TRUE(found.ok());
    func = *found;
    if (pipeline) {
      ASSERT_TRUE(mlir::succeeded(runPipeline(*module, pipeline)));
      func = module->lookupSymbol<mlir::func::FuncOp>(func.getName().str() +
                                                      suffix);
      ASSERT_TRUE(func);
    }
    std::string error;
    jit = JitModel::compile(*module, func.getName(), target, error);
    ASSERT_TRUE(jit) << error;
    for (const ParamInfo &p : parametersOf(func)) {
      weights[p.name] =
          Tensor::f32(p.shape, gen.values(product(p.shape), scale(p.shape)));
      refParams[p.name] = toArray(weights[p.name]);
    }
  }

  /// The interpreter's and the JIT's outputs on `inputs`.
  void evaluate(std::vector<Tensor> &inputs,
                std::vector<reference::Array> &expected,
                std::vector<Tensor> &actual) {
    std::vector<reference::Array> refIn;
    for (const Tensor &t : inputs)
      refIn.push_back(toArray(t));
    std::string error;
    ASSERT_TRUE(reference::run(func, refIn, refParams, expected, error))
        << error;
    ASSERT_TRUE(runJit(*jit, inputs, weights, expected, actual, error))
        << error;
  }

  /// The largest |JIT - interpreter| over every output on `inputs`, and
  /// the largest |interpreter output|.
  std::pair<double, double> worstDifference(std::vector<Tensor> &inputs) {
    std::vector<reference::Array> expected;
    std::vector<Tensor> actual;
    evaluate(inputs, expected, actual);
    double worst = 0, largest = 0;
    for (size_t k = 0; k < expected.size() && k < actual.size(); ++k)
      for (size_t i = 0; i < expected[k].f.size(); ++i) {
        worst = std::max(worst, double(std::fabs(actual[k].f32Data()[i] -
                                                 expected[k].f[i])));
        largest = std::max(largest, double(std::fabs(expected[k].f[i])));
      }
    return {worst, largest};
  }

  /// With bf16 weights: the outputs differ from the interpreter's (f32)
  /// by more than `atLeast` (the narrow weights are used) and by less than
  /// 1% of the largest output (bf16's precision); printed with `label`.
  void expectBf16Close(std::vector<Tensor> &inputs, double atLeast,
                       const std::string &label) {
    auto [worst, largest] = worstDifference(inputs);
    std::printf("bf16 weights, %s: worst |bf16 - f32| = %.3g (largest output "
                "%.3g)\n",
                label.c_str(), worst, largest);
    EXPECT_GT(worst, atLeast);
    EXPECT_LT(worst, 1e-2 * largest);
  }

  /// The JIT's outputs on `inputs` match the interpreter's (within the
  /// forward tolerance, or `rtol` and `atol`).
  void expectMatches(std::vector<Tensor> &inputs, double rtol = 1e-4,
                     double atol = 1e-5) {
    std::vector<reference::Array> expected;
    std::vector<Tensor> actual;
    ASSERT_NO_FATAL_FAILURE(evaluate(inputs, expected, actual));
    for (size_t k = 0; k < expected.size(); ++k)
      for (size_t i = 0; i < expected[k].f.size(); ++i)
        ASSERT_NEAR(actual[k].f32Data()[i], expected[k].f[i],
                    atol + rtol * std::fabs(expected[k].f[i]))
            << "output " << k << " element " << i;
  }
};

// T and B are run-time sizes: one compiled model serves every (T, B),
// including B = 1, without recompiling.
TEST(Differential, OneCompilationServesEveryLengthAndBatch) {
  const char *source = R"(
model M(hidden = 5) {
  input x : f32[T, B, 3]
  input lengths : i64[B]
  y, (h_n, c_n) = rnn: lstm(x, hidden, layers = 2, bidirectional = true, lengths = lengths)
  output y, h_n, c_n
})";
  Generator gen(42);
  FixedModel m;
  ASSERT_NO_FATAL_FAILURE(m.compile(
      source, gen, [](const std::vector<int64_t> &) { return 0.5f; }));
  for (auto [T, B] :
       {std::pair<int64_t, int64_t>{1, 1}, {9, 1}, {4, 6}, {13, 3}}) {
    SCOPED_TRACE("T = " + std::to_string(T) + ", B = " + std::to_string(B));
    std::vector<int64_t> len(B);
    for (int64_t &l : len)
      l = gen.pick(1, T);
    std::vector<Tensor> inputs{
        Tensor::f32({T, B, 3}, gen.values(T * B * 3, 1.0f)),
        Tensor::i64({B}, len)};
    ASSERT_NO_FATAL_FAILURE(m.expectMatches(inputs));
  }
}

// Matmuls large enough for every path of the register-blocked kernel: B
// packed at load time (every weight), B packed per (panel, reduction
// block) at run time once there are 16 rows or more and read in place
// below that (the backward's activations: see the gradient tests); several
// reduction blocks (K > 256), several column panels and a partial last tile
// (N not a multiple of the vector width), on one thread and split across
// threads at a column range that ends inside a panel.
TEST(Differential, LargeMatmulsMatchInterpreter) {
  const char *source = R"(
model Big() {
  input x : f32[T, B, 300]
  y = fc: linear(x, 77)
  z = fc2: linear(y, 530)
  h, s = rnn: rnn(x, 261)
  output y, z, h, s
})";
  Generator gen(7);
  FixedModel m;
  ASSERT_NO_FATAL_FAILURE(m.compile(source, gen, fanInScale));
  for (unsigned threads : {1u, 2u})
    for (auto [T, B] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {4, 20}}) {
      SCOPED_TRACE(where(T, B, threads));
      m.jit->setThreads(threads);
      std::vector<Tensor> inputs{
          Tensor::f32({T, B, 300}, gen.values(T * B * 300, 1.0f))};
      ASSERT_NO_FATAL_FAILURE(m.expectMatches(inputs));
    }
}

// Recurrent steps whose gate nonlinearities run as the epilogue of the
// h-matmul, in registers (loom-fuse-matmul-epilogues; at batch 1): unit
// counts that are whole vectors on AVX2 and AVX-512 (16, 32, 48), the
// built-in LSTM (bidirectional, with lengths: the masking is in the
// epilogue), GRU (the reset gate multiplies a gate slice inside the
// epilogue), a tanh RNN, a user cell written per gate (fused gate matmuls
// first) and a second layer fed by the first, on one and two threads (each
// thread takes every gate of its units); at B = 3 the same code takes the
// unfused path. And with bf16 weights, within bf16's precision.
TEST(Differential, FusedEpiloguesMatchInterpreter) {
  const char *source = R"(
cell PerGate(x[I], h[H], c[H]) -> (h, c) {
  param Wi[H, I], Wf[H, I], Wg[H, I], Wo[H, I]
  param Ui[H, H], Uf[H, H], Ug[H, H], Uo[H, H], b[H]
  i = sigmoid(Wi @ x + Ui @ h + b)
  f = sigmoid(Wf @ x + Uf @ h)
  g = tanh(Wg @ x + Ug @ h)
  o = sigmoid(Wo @ x + Uo @ h)
  c = f * c + i * g
  h = o * tanh(c)
}

model M() {
  input x : f32[T, B, 12]
  input lengths : i64[B]
  y, (h_n, c_n) = l: lstm(x, 32, bidirectional = true, lengths = lengths)
  z, g_n = g: gru(y, 48, lengths = lengths)
  r, r_n = t: rnn(z, 16)
  u, (u_h, u_c) = p: PerGate(r, 16, layers = 2)
  output y, h_n, c_n, z, g_n, r, r_n, u, u_h, u_c
})";
  for (bool bf16 : {false, true}) {
    SCOPED_TRACE(bf16 ? "bf16 weights" : "f32 weights");
    Generator gen(11);
    FixedModel m;
    TargetOptions target;
    target.bf16Weights = bf16;
    ASSERT_NO_FATAL_FAILURE(
        m.compile(source, gen, fanInScale, nullptr, "", target));
    for (unsigned threads : {1u, 2u})
      for (auto [T, B] : {std::pair<int64_t, int64_t>{7, 1}, {5, 3}}) {
        SCOPED_TRACE(where(T, B, threads));
        m.jit->setThreads(threads);
        std::vector<int64_t> len(B);
        for (int64_t &l : len)
          l = gen.pick(1, T);
        std::vector<Tensor> inputs{
            Tensor::f32({T, B, 12}, gen.values(T * B * 12, 1.0f)),
            Tensor::i64({B}, len)};
        if (!bf16) {
          ASSERT_NO_FATAL_FAILURE(m.expectMatches(inputs));
          continue;
        }
        m.expectBf16Close(inputs, 1e-7, where(T, B, threads));
      }
  }
}

// The gradient's forward scan (it also yields the states entering each
// step) runs the fused epilogue too at batch 1: loom grad's pipeline, B = 1
// and B = 3, within the gradient tolerance.
TEST(Differential, FusedEpilogueGradientsMatchInterpreter) {
  const char *source = R"(
model G() {
  input x : f32[T, B, 12]
  input lengths : i64[B]
  input targets : i64[T, B]
  y, (h_n, c_n) = l: lstm(x, 32, lengths = lengths)
  z, g_n = g: gru(y, 16)
  o = fc: linear(z, 10)
  output o
  loss cross_entropy(o, targets)
})";
  Generator gen(13);
  FixedModel m;
  ASSERT_NO_FATAL_FAILURE(
      m.compile(source, gen, fanInScale, kGradientPipeline, "_grad"));
  for (unsigned threads : {1u, 2u})
    for (auto [T, B] : {std::pair<int64_t, int64_t>{6, 1}, {4, 3}}) {
      SCOPED_TRACE(where(T, B, threads));
      m.jit->setThreads(threads);
      std::vector<int64_t> len(B), targets(T * B);
      for (int64_t &l : len)
        l = gen.pick(1, T);
      for (int64_t &t : targets)
        t = gen.pick(0, 9);
      std::vector<Tensor> inputs{
          Tensor::f32({T, B, 12}, gen.values(T * B * 12, 1.0f)),
          Tensor::i64({B}, len), Tensor::i64({T, B}, targets)};
      ASSERT_NO_FATAL_FAILURE(m.expectMatches(inputs, 1e-3, 1e-6));
    }
}

// bf16 weight storage (--weight-storage=bf16): the packed weights are
// rounded to bfloat16 and widened in the kernels, at batch 1 and at a
// batch, through full and partial tiles and several reduction blocks. The
// outputs differ from f32 (the narrow weights are really used) but stay
// within bf16's precision: a weight's relative error is at most 2^-9.
TEST(Differential, Bf16WeightsStayCloseToF32) {
  const char *source = R"(
model Big() {
  input x : f32[T, B, 300]
  h, s = rnn: rnn(x, 261)
  y = fc: linear(h, 77)
  output y, h, s
})";
  Generator gen(5);
  FixedModel m;
  TargetOptions target;
  target.bf16Weights = true;
  ASSERT_NO_FATAL_FAILURE(
      m.compile(source, gen, fanInScale, nullptr, "", target));
  for (unsigned threads : {1u, 2u})
    for (auto [T, B] : {std::pair<int64_t, int64_t>{5, 1}, {3, 20}}) {
      SCOPED_TRACE(where(T, B, threads));
      m.jit->setThreads(threads);
      std::vector<Tensor> inputs{
          Tensor::f32({T, B, 300}, gen.values(T * B * 300, 1.0f))};
      m.expectBf16Close(inputs, 1e-6, where(T, B, threads));
    }
}

// The same sizes through the gradient (loom grad's pipeline): the weight
// gradients' B operands are activations, packed per block at run time with
// 16 or more rows (here G = 261 or 530 rows, K = T·B up to 80, N = 300
// columns: several panels, a partial last tile), and the input gradients
// read the weights packed at load time; within the gradient tolerance.
TEST(Differential, LargeWeightGradientsMatchInterpreter) {
  const char *source = R"(
model Big() {
  input x : f32[T, B, 300]
  input targets : i64[T, B]
  y = fc: linear(x, 77)
  h, s = rnn: rnn(y, 261)
  z = fc2: linear(h, 530)
  output z
  loss cross_entropy(z, targets)
})";
  Generator gen(11);
  FixedModel m;
  ASSERT_NO_FATAL_FAILURE(
      m.compile(source, gen, fanInScale, kGradientPipeline, "_grad"));
  for (unsigned threads : {1u, 2u})
    for (auto [T, B] : {std::pair<int64_t, int64_t>{2, 1}, {4, 20}}) {
      SCOPED_TRACE(where(T, B, threads));
      m.jit->setThreads(threads);
      std::vector<int64_t> targets(T * B);
      for (int64_t &t : targets)
        t = gen.pick(0, 529);
      std::vector<Tensor> inputs{
          Tensor::f32({T, B, 300}, gen.values(T * B * 300, 1.0f)),
          Tensor::i64({T, B}, targets)};
      ASSERT_NO_FATAL_FAILURE(m.expectMatches(inputs, 1e-3, 1e-6));
    }
}

} // namespace
