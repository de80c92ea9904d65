//===- ApiTest.cpp - the C++ embedding API ----------------------------===//
//
// Only loom/loom.hpp (and the npy/safetensors readers, for golden data):
// results against PyTorch's goldens, streaming against whole sequences,
// training against the SGD rule, sharing a module between threads, the IR
// of every phase and LOOM_DUMP_DIR, and every misuse the API reports.
//
//===----------------------------------------------------------------------===//

#include "loom/loom.hpp"

#include "runtime/Npy.h"
#include "runtime/SafeTensors.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

// Every malloc of the process, counted while `countMallocs` is set: glibc
// lets a program replace malloc, and __libc_malloc is the original. Under
// AddressSanitizer (scripts/sanitize.sh) malloc is ASan's, so nothing is
// replaced and the counting test is skipped there.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOOM_TEST_ASAN 1
#endif
#endif
namespace {
std::atomic<bool> countMallocs{false};
std::atomic<long> mallocs{0};
} // namespace
#ifndef LOOM_TEST_ASAN
extern "C" void *__libc_malloc(size_t);
extern "C" void *__libc_calloc(size_t, size_t);
extern "C" void *__libc_realloc(void *, size_t);
extern "C" void *malloc(size_t n) {
  if (countMallocs.load(std::memory_order_relaxed))
    mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void *calloc(size_t n, size_t m) {
  if (countMallocs.load(std::memory_order_relaxed))
    mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, m);
}
extern "C" void *realloc(void *p, size_t n) {
  if (countMallocs.load(std::memory_order_relaxed))
    mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
#endif

namespace {

using loom::ElementType;
using loom::Phase;
using loom::TensorRef;

const std::string kRoot = LOOM_SOURCE_DIR;
const std::string kCharLM = kRoot + "/examples/charlm/charlm.loom";
const std::string kCharLMWeights =
    kRoot + "/examples/charlm/charlm.safetensors";

loom::Tensor npy(const std::string &path) {
  auto t = loom::readNpy(path);
  EXPECT_TRUE(t.ok()) << t.error();
  return t.ok() ? t.take() : loom::Tensor();
}

TensorRef ref(loom::Tensor &t) {
  return TensorRef(t.data.data(),
                   t.dtype == loom::DType::I64 ? ElementType::I64
                                               : ElementType::F32,
                   t.shape.data(), t.shape.size());
}

std::shared_ptr<const loom::Module> compile(const std::string &path,
                                            loom::CompileOptions o = {}) {
  auto m = loom::Module::compileFile(path, o);
  EXPECT_TRUE(m.ok()) << m.message();
  return m.ok() ? *m : nullptr;
}

void expectClose(const float *got, const float *want, size_t n, double rtol,
                 double atol, const std::string &what) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i)
    if (!(std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i]))) {
      if (bad++ < 3)
        ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs "
                      << want[i];
    }
  EXPECT_EQ(bad, 0u) << what;
}

// The model with every LSTM feature against PyTorch (DESIGN.md's forward
// tolerance), outputs written into the caller's buffers.
TEST(Api, RunMatchesPyTorch) {
  std::string dir = kRoot + "/tests/golden/lstm_full/";
  auto m = compile(dir + "model.loom");
  ASSERT_TRUE(m);
  loom::Session s(m);
  ASSERT_TRUE(s.loadWeights(dir + "weights.safetensors").ok());
  std::vector<loom::Tensor> in;
  std::vector<TensorRef> inRefs;
  for (const loom::PortInfo &p : m->inputs())
    in.push_back(npy(dir + "inputs/" + p.name + ".npy"));
  for (auto &t : in)
    inRefs.push_back(ref(t));
  auto shapes = s.outputShapes(inRefs);
  ASSERT_TRUE(shapes.ok()) << shapes.message();
  std::vector<std::vector<float>> out;
  std::vector<TensorRef> outRefs;
  for (const auto &shape : *shapes) {
    size_t n = 1;
    for (int64_t d : shape)
      n *= size_t(d);
    out.emplace_back(n, -1.0f);
  }
  for (size_t k = 0; k < out.size(); ++k)
    outRefs.emplace_back(out[k].data(), ElementType::F32, (*shapes)[k].data(),
                         (*shapes)[k].size());
  loom::Result r = s.run(inRefs, outRefs);
  ASSERT_TRUE(r.ok()) << r.message();
  for (size_t k = 0; k < out.size(); ++k) {
    loom::Tensor want = npy(dir + "expected/" + m->outputs()[k].name + ".npy");
    ASSERT_EQ(want.shape, (*shapes)[k]);
    expectClose(out[k].data(), want.f32Data(), out[k].size(), 1e-4, 1e-5,
                m->outputs()[k].name);
  }
}

// The character LM: T steps fed one at a time (and in chunks) give the
// whole sequence's logits and final states.
class Streaming : public ::testing::TestWithParam<unsigned> {};

TEST_P(Streaming, MatchesWholeSequence) {
  loom::CompileOptions o;
  o.threads = GetParam();
  auto m = compile(kCharLM, o);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->inputs().size(), 3u);
  EXPECT_EQ(m->inputs()[1].state, "h_n");
  EXPECT_EQ(m->inputs()[2].state, "c_n");
  EXPECT_EQ(m->outputs()[1].state, "h0");
  loom::Session whole(m), stream(m);
  ASSERT_TRUE(whole.loadWeights(kCharLMWeights).ok());
  ASSERT_TRUE(stream.loadWeights(kCharLMWeights).ok());
  const int64_t T = 12, V = 75, H = 128;
  std::vector<int64_t> tokens;
  for (int64_t t = 0; t < T; ++t)
    tokens.push_back((t * 7 + 3) % V);
  std::vector<float> h0(2 * H, 0.0f), c0(2 * H, 0.0f);
  std::vector<float> logits(T * V), hn(2 * H), cn(2 * H);
  loom::Result r = whole.run(
      {TensorRef(tokens.data(), {T, 1}), TensorRef(h0.data(), {2, 1, H}),
       TensorRef(c0.data(), {2, 1, H})},
      {TensorRef(logits.data(), {T, 1, V}), TensorRef(hn.data(), {2, 1, H}),
       TensorRef(cn.data(), {2, 1, H})});
  ASSERT_TRUE(r.ok()) << r.message();

  std::vector<float> stepLogits(V);
  for (int64_t t = 0; t < T; ++t) {
    r = stream.step({TensorRef(&tokens[t], {1, 1})},
                    {TensorRef(stepLogits.data(), {1, 1, V})});
    ASSERT_TRUE(r.ok()) << r.message();
    expectClose(stepLogits.data(), &logits[t * V], V, 1e-5, 1e-6,
                "logits at step " + std::to_string(t));
  }
  std::vector<float> h(2 * H), c(2 * H);
  ASSERT_TRUE(stream.getState("h0", h.data(), h.size()).ok());
  ASSERT_TRUE(stream.getState("c0", c.data(), c.size()).ok());
  expectClose(h.data(), hn.data(), h.size(), 1e-5, 1e-6, "h_n");
  expectClose(c.data(), cn.data(), c.size(), 1e-5, 1e-6, "c_n");
  auto shape = stream.stateShape("c0");
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(*shape, (std::vector<int64_t>{2, 1, H}));

  // Chunks of 4 after a reset: the same.
  stream.resetState();
  std::vector<float> chunk(4 * V);
  for (int64_t t = 0; t < T; t += 4) {
    r = stream.step({TensorRef(&tokens[t], {4, 1})},
                    {TensorRef(chunk.data(), {4, 1, V})});
    ASSERT_TRUE(r.ok()) << r.message();
    expectClose(chunk.data(), &logits[t * V], 4 * V, 1e-5, 1e-6,
                "chunk at step " + std::to_string(t));
  }
  // setState: continuing from the whole run's final state is the same as
  // streaming on from step T.
  ASSERT_TRUE(stream.setState("h0", hn.data(), {2, 1, H}).ok());
  ASSERT_TRUE(stream.setState("c0", cn.data(), {2, 1, H}).ok());
  std::vector<float> a(V), b(V);
  int64_t next = 5;
  ASSERT_TRUE(
      stream.step({TensorRef(&next, {1, 1})}, {TensorRef(a.data(), {1, 1, V})})
          .ok());
  ASSERT_TRUE(whole.setState("h0", hn.data(), {2, 1, H}).ok());
  ASSERT_TRUE(whole.setState("c0", cn.data(), {2, 1, H}).ok());
  ASSERT_TRUE(
      whole.step({TensorRef(&next, {1, 1})}, {TensorRef(b.data(), {1, 1, V})})
          .ok());
  expectClose(a.data(), b.data(), V, 1e-6, 1e-7, "after setState");
}

// After warm-up a streaming step calls malloc zero times: the API reuses
// its argument frame and states, and compiled code its heap cache.
TEST_P(Streaming, AllocatesNothingAfterWarmup) {
#ifdef LOOM_TEST_ASAN
  GTEST_SKIP() << "AddressSanitizer owns malloc here; the normal build counts";
#endif
  loom::CompileOptions o;
  o.threads = GetParam();
  auto m = compile(kCharLM, o);
  ASSERT_TRUE(m);
  loom::Session s(m);
  ASSERT_TRUE(s.loadWeights(kCharLMWeights).ok());
  int64_t token = 3;
  std::vector<float> logits(75);
  std::vector<TensorRef> in{TensorRef(&token, {1, 1})};
  std::vector<TensorRef> out{TensorRef(logits.data(), {1, 1, 75})};
  for (int k = 0; k < 3; ++k)
    ASSERT_TRUE(s.step(in, out).ok());
  mallocs = 0;
  countMallocs = true;
  bool ok = true;
  for (int k = 0; k < 50; ++k) {
    token = (token * 5 + 1) % 75;
    ok &= s.step(in, out).ok();
  }
  countMallocs = false;
  EXPECT_TRUE(ok);
  EXPECT_EQ(mallocs.load(), 0) << "malloc calls in 50 streaming steps";
}

INSTANTIATE_TEST_SUITE_P(Threads, Streaming, ::testing::Values(1u, 2u));

// One module, a session per thread, all at once: each gets the serial
// result.
TEST(Api, ModuleIsSharedByThreads) {
  loom::CompileOptions o;
  o.threads = 1;
  auto m = compile(kCharLM, o);
  ASSERT_TRUE(m);
  auto runOnce = [&](int64_t seed, std::vector<float> &logits) {
    loom::Session s(m);
    if (!s.loadWeights(kCharLMWeights).ok())
      return false;
    std::vector<int64_t> tokens(8);
    for (size_t t = 0; t < tokens.size(); ++t)
      tokens[t] = (seed + int64_t(t) * 11) % 75;
    logits.assign(8 * 2 * 75, 0.0f);
    std::vector<float> h0(2 * 2 * 128, 0.0f), hn(h0.size()), cn(h0.size());
    return s
        .run({TensorRef(tokens.data(), {4, 2}),
              TensorRef(h0.data(), {2, 2, 128}),
              TensorRef(h0.data(), {2, 2, 128})},
             {TensorRef(logits.data(), {4, 2, 75}),
              TensorRef(hn.data(), {2, 2, 128}),
              TensorRef(cn.data(), {2, 2, 128})})
        .ok();
  };
  std::vector<std::vector<float>> serial(4), parallel(4);
  for (int k = 0; k < 4; ++k)
    ASSERT_TRUE(runOnce(k, serial[k]));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep)
        if (!runOnce(k, parallel[k]) || parallel[k] != serial[k])
          ++failures;
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
}

// Gradients against PyTorch (DESIGN.md's gradient tolerance), then one SGD
// step against the rule w - lr * g.
TEST(Api, GradientsMatchPyTorchAndTrainStepFollowsSgd) {
  std::string dir = kRoot + "/tests/golden/grad_word_lm/";
  loom::CompileOptions o;
  o.training = true;
  o.trainSettings = {{"optimizer", "sgd"}, {"lr", "0.5"}};
  auto m = compile(dir + "model.loom", o);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->hasTraining());
  loom::Session s(m);
  ASSERT_TRUE(s.loadWeights(dir + "weights.safetensors").ok());
  loom::Tensor tokens = npy(dir + "inputs/tokens.npy");
  loom::Tensor targets = npy(dir + "inputs/targets.npy");
  loom::Session::NamedInputs in{{"tokens", ref(tokens)},
                                {"targets", ref(targets)}};
  auto loss = s.computeGradients(in);
  ASSERT_TRUE(loss.ok()) << loss.message();
  loom::Tensor wantLoss = npy(dir + "expected/loss.npy");
  expectClose(&*loss, wantLoss.f32Data(), 1, 1e-4, 1e-5, "loss");
  auto want = loom::readSafeTensors(dir + "expected/grads.safetensors");
  ASSERT_TRUE(want.ok());
  std::map<std::string, std::vector<float>> before, grads;
  for (const loom::ParameterInfo &p : m->parameters()) {
    const loom::Tensor *g = want->find(p.name);
    ASSERT_NE(g, nullptr) << p.name;
    std::vector<float> got(size_t(g->numElements()));
    ASSERT_TRUE(s.gradient(p.name, got.data(), got.size()).ok());
    expectClose(got.data(), g->f32Data(), got.size(), 1e-3, 1e-6,
                "d loss / d " + p.name);
    grads[p.name] = got;
    before[p.name].resize(got.size());
    ASSERT_TRUE(s.getParameter(p.name, before[p.name].data(), got.size()).ok());
  }
  auto stepLoss = s.trainStep(in);
  ASSERT_TRUE(stepLoss.ok()) << stepLoss.message();
  EXPECT_NEAR(*stepLoss, *loss, 1e-5 * std::fabs(*loss));
  EXPECT_EQ(s.stepsTaken(), 1);
  for (const loom::ParameterInfo &p : m->parameters()) {
    std::vector<float> after(before[p.name].size()), expected(after.size());
    ASSERT_TRUE(s.getParameter(p.name, after.data(), after.size()).ok());
    for (size_t i = 0; i < after.size(); ++i)
      expected[i] = before[p.name][i] - 0.5f * grads[p.name][i];
    expectClose(after.data(), expected.data(), after.size(), 1e-5, 1e-6,
                "updated " + p.name);
  }
  // The next forward run uses the updated weights: the loss went down.
  auto again = s.computeGradients(in);
  ASSERT_TRUE(again.ok());
  EXPECT_LT(*again, *loss);
}

// The IR of every phase, as `loom compile --emit` prints it, and the
// remarks; LOOM_DUMP_DIR writes the same text.
TEST(Api, IRAndDumpDir) {
  std::string dir = ::testing::TempDir() + "/loom-api-dump";
  std::filesystem::remove_all(dir);
  setenv("LOOM_DUMP_DIR", dir.c_str(), 1);
  auto m = compile(kCharLM);
  unsetenv("LOOM_DUMP_DIR");
  ASSERT_TRUE(m);
  EXPECT_NE(m->ir(Phase::AST).find("Model CharLM"), std::string::npos)
      << m->ir(Phase::AST).substr(0, 200);
  EXPECT_NE(m->ir(Phase::Loom).find("loom.scan"), std::string::npos);
  EXPECT_NE(m->ir(Phase::Linalg).find("linalg."), std::string::npos);
  EXPECT_NE(m->ir(Phase::LLVMDialect).find("llvm.func"), std::string::npos);
  EXPECT_NE(m->ir(Phase::LLVMIR).find("define "), std::string::npos);
  EXPECT_NE(m->ir(Phase::Asm).find("CharLM:"), std::string::npos);
  EXPECT_NE(m->remarks().find("remark:"), std::string::npos);
  const char *files[] = {"0-ast.txt",           "1-loom.mlir",  "2-linalg.mlir",
                         "3-llvm-dialect.mlir", "4-llvm-ir.ll", "5-asm.s"};
  for (int p = 0; p < 6; ++p) {
    std::ifstream f(dir + "/CharLM/" + files[p]);
    ASSERT_TRUE(f.good()) << files[p];
    std::stringstream text;
    text << f.rdbuf();
    EXPECT_EQ(text.str(), m->ir(Phase(p))) << files[p];
  }
  std::ifstream remarks(dir + "/CharLM/remarks.txt");
  std::stringstream text;
  text << remarks.rdbuf();
  EXPECT_EQ(text.str(), m->remarks());
}

// The compile cache: a second compile reads the objects, runs the same
// code, and has the remarks; another key recompiles; a corrupt or
// truncated entry is detected, recompiled and rewritten.
TEST(Api, CompileCache) {
  namespace fs = std::filesystem;
  std::string dir = ::testing::TempDir() + "/loom-api-cache";
  fs::remove_all(dir);
  loom::CompileOptions o;
  o.cacheDir = dir;
  o.threads = 1;
  auto logitsOf = [&](const std::shared_ptr<const loom::Module> &m) {
    loom::Session s(m);
    EXPECT_TRUE(s.loadWeights(kCharLMWeights).ok());
    std::vector<int64_t> tokens{1, 2, 3, 4};
    std::vector<float> logits(4 * 75), state(2 * 128, 0.0f), hn(2 * 128),
        cn(2 * 128);
    EXPECT_TRUE(s.run({TensorRef(tokens.data(), {4, 1}),
                       TensorRef(state.data(), {2, 1, 128}),
                       TensorRef(state.data(), {2, 1, 128})},
                      {TensorRef(logits.data(), {4, 1, 75}),
                       TensorRef(hn.data(), {2, 1, 128}),
                       TensorRef(cn.data(), {2, 1, 128})})
                    .ok());
    return logits;
  };
  auto cold = compile(kCharLM, o);
  ASSERT_TRUE(cold);
  EXPECT_FALSE(cold->fromCache());
  std::vector<fs::path> entries;
  for (const auto &e : fs::directory_iterator(dir))
    entries.push_back(e.path());
  ASSERT_EQ(entries.size(), 1u);
  auto warm = compile(kCharLM, o);
  ASSERT_TRUE(warm);
  EXPECT_TRUE(warm->fromCache());
  EXPECT_EQ(logitsOf(cold), logitsOf(warm));
  EXPECT_EQ(warm->remarks(), cold->remarks());

  loom::CompileOptions other = o;
  other.unroll = 3;
  auto changed = compile(kCharLM, other);
  ASSERT_TRUE(changed);
  EXPECT_FALSE(changed->fromCache());
  EXPECT_EQ(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);

  // Flip one byte in the middle of the entry, then cut it short.
  for (int damage = 0; damage < 2; ++damage) {
    std::string bytes;
    {
      std::ifstream in(entries[0], std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      bytes = ss.str();
    }
    if (damage == 0)
      bytes[bytes.size() / 2] ^= 0x40;
    else
      bytes.resize(bytes.size() / 3);
    std::ofstream(entries[0], std::ios::binary | std::ios::trunc) << bytes;
    auto again = compile(kCharLM, o);
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->fromCache()) << "damage " << damage;
    EXPECT_EQ(logitsOf(again), logitsOf(cold));
    auto repaired = compile(kCharLM, o);
    ASSERT_TRUE(repaired);
    EXPECT_TRUE(repaired->fromCache()) << "damage " << damage;
  }

  // A training module caches its model and step functions (the gradient
  // is compiled, and cached, on the first computeGradients).
  loom::CompileOptions t = o;
  t.training = true;
  std::string lm = kRoot + "/tests/golden/grad_word_lm/model.loom";
  auto trainCold = compile(lm, t);
  ASSERT_TRUE(trainCold);
  EXPECT_FALSE(trainCold->fromCache());
  auto trainWarm = compile(lm, t);
  ASSERT_TRUE(trainWarm);
  EXPECT_TRUE(trainWarm->fromCache());
}

// Every misuse comes back as a message; nothing crashes.
TEST(Api, CompileErrorsCarryTheDiagnostic) {
  auto m = loom::Module::compileString("model M {\n  input x : f32[T, B, 3]\n"
                                       "  y = x +\n  output y\n}\n",
                                       {}, "bad.loom");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("bad.loom:"), std::string::npos) << m.message();
  EXPECT_NE(m.message().find("error:"), std::string::npos) << m.message();
  EXPECT_NE(m.message().find("^"), std::string::npos) << m.message();
  auto missing = loom::Module::compileFile("/nonexistent/model.loom");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("/nonexistent/model.loom"),
            std::string::npos);
  loom::CompileOptions o;
  o.unroll = 1000;
  auto badOption = loom::Module::compileFile(kCharLM, o);
  ASSERT_FALSE(badOption.ok());
  EXPECT_NE(badOption.message().find("unroll"), std::string::npos);
  o = {};
  o.cpu = "no-such-cpu";
  auto badCpu = loom::Module::compileFile(kCharLM, o);
  ASSERT_FALSE(badCpu.ok());
  EXPECT_NE(badCpu.message().find("no-such-cpu"), std::string::npos)
      << badCpu.message();
}

// Resource limits (docs/robustness.md): parameters over the memory limit
// fail the compile; a run over it fails before anything is allocated.
TEST(ApiLimits, ParametersOverTheLimitFailTheCompile) {
  auto m = loom::Module::compileString(
      "model Huge(vocab = 1000000000, emb = 64) {\n"
      "  input tokens : i64[T, B]\n"
      "  x = encoder: embedding(tokens, vocab, emb)\n"
      "  output x\n}\n",
      {}, "huge.loom");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("holding the parameters of 'Huge' (the largest: "
                             "'encoder.weight' f32[1000000000, 64]) needs "
                             "238.4 GiB, over loom's memory limit of"),
            std::string::npos)
      << m.message();
  auto line = loom::Module::compileString(
      "model M() {\n  input x : f32[T, B, 3]\n  # " + std::string(20000, 'x') +
          "\n  output x\n}\n",
      {}, "line.loom");
  ASSERT_FALSE(line.ok());
  EXPECT_NE(line.message().find("line.loom:3:10001: error: this line is 20004 "
                                "bytes long; the limit is 10000"),
            std::string::npos)
      << line.message().substr(0, 300);
  EXPECT_LT(line.message().size(), 600u) << "the long line is shown cut";
}

// ctest runs this with LOOM_MAX_MEMORY=1M (test api-memory-limit); the
// limit is read once per process, so a normal run skips it.
TEST(ApiLimits, RunOverTheLimitFails) {
  const char *limit = std::getenv("LOOM_MAX_MEMORY");
  if (!limit || std::string(limit) != "1M")
    GTEST_SKIP() << "needs LOOM_MAX_MEMORY=1M (ctest api-memory-limit)";
  auto m = loom::Module::compileString(
      "model Small(vocab = 50, emb = 4) {\n"
      "  input tokens : i64[T, B]\n"
      "  x = encoder: embedding(tokens, vocab, emb)\n"
      "  logits = decoder: linear(x, vocab)\n"
      "  output logits\n}\n",
      {}, "small.loom");
  ASSERT_TRUE(m.ok()) << m.message();
  loom::Session s(*m);
  std::vector<float> w(50 * 4, 0.5f), dw(50 * 4, 0.1f), db(50, 0.f);
  ASSERT_TRUE(s.setParameter("encoder.weight", w.data(), {50, 4}).ok());
  ASSERT_TRUE(s.setParameter("decoder.weight", dw.data(), {50, 4}).ok());
  ASSERT_TRUE(s.setParameter("decoder.bias", db.data(), {50}).ok());
  // 10 x 10 tokens: 20 KiB of logits, well within 1 MiB.
  std::vector<int64_t> tokens(100, 3);
  std::vector<float> logits(100 * 50);
  ASSERT_TRUE(s.run({TensorRef(tokens.data(), {10, 10})},
                    {TensorRef(logits.data(), {10, 10, 50})})
                  .ok());
  // 100 x 100 tokens: 2 MiB of logits.
  tokens.assign(10000, 3);
  logits.assign(10000 * 50, 0.f);
  loom::Result r = s.run({TensorRef(tokens.data(), {100, 100})},
                         {TensorRef(logits.data(), {100, 100, 50})});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("running 'Small' at these input sizes (the "
                             "largest tensor: f32[100, 100, 50] at "
                             "small.loom:4:21)"),
            std::string::npos)
      << r.message();
  EXPECT_NE(r.message().find("over loom's memory limit of 1.0 MiB "
                             "(LOOM_MAX_MEMORY)"),
            std::string::npos)
      << r.message();
}

TEST(Api, MisuseIsReported) {
  auto m = compile(kCharLM);
  ASSERT_TRUE(m);
  loom::Session s(m);
  int64_t token = 3;
  std::vector<float> logits(75), h(2 * 128);
  std::vector<TensorRef> in{TensorRef(&token, {1, 1})};
  std::vector<TensorRef> out{TensorRef(logits.data(), {1, 1, 75})};
  auto expectError = [](const loom::Result &r, const std::string &text) {
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.message().find(text), std::string::npos)
        << "message: " << r.message() << "\nexpected: " << text;
  };
  // Before weights.
  expectError(s.step(in, out), "the weights are not set");
  expectError(s.getParameter("decoder.weight", logits.data(), 75),
              "has no value yet");
  ASSERT_TRUE(s.loadWeights(kCharLMWeights).ok());
  expectError(s.loadWeights("/nonexistent.safetensors"), "/nonexistent");
  // Wrong counts, shapes, types and values.
  expectError(s.step({}, out), "a streaming step takes the 1 inputs");
  expectError(s.run(in, out), "the model takes 3 inputs and 3 outputs");
  expectError(s.step(in, {TensorRef(logits.data(), {1, 75})}),
              "output 'logits' must have shape [1, 1, 75] for these inputs, "
              "found [1, 75]");
  expectError(s.step({TensorRef(&token, {1})}, out),
              "input 'tokens' must have rank 2");
  float f = 0;
  expectError(s.step({TensorRef(&f, {1, 1})}, out),
              "input 'tokens' must be int64, found float32");
  expectError(s.step({TensorRef(static_cast<int64_t *>(nullptr), {1, 1})}, out),
              "input 'tokens' has no data");
  int64_t bad = 75;
  expectError(s.step({TensorRef(&bad, {1, 1})}, out),
              "input 'tokens' has token id 75 at [0, 0], outside the "
              "vocabulary [0, 75)");
  // States.
  expectError(s.getState("h0", h.data(), h.size()), "has no value yet");
  expectError(s.setState("h0", h.data(), {2, 1, 64}),
              "input 'h0' must have shape f32[2, B, 128], found [2, 1, 64]");
  expectError(s.getState("x", h.data(), h.size()),
              "no recurrent state input 'x' (its states: h0, c0)");
  ASSERT_TRUE(s.step(in, out).ok());
  expectError(s.getState("h0", h.data(), 5), "has 256 elements");
  std::vector<float> big(2 * 3 * 128);
  expectError(s.setState("h0", big.data(), {2, 3, 128}), "resetState() first");
  // Parameters.
  expectError(s.setParameter("nope", h.data(), {1}),
              "the model has no parameter 'nope'");
  expectError(s.setParameter("decoder.bias", h.data(), {74}),
              "parameter 'decoder.bias' has shape [75], got [74]");
  // Training on an inference module.
  auto g = s.computeGradients({});
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("compiled without training"), std::string::npos);
  // The session still works after every error above.
  EXPECT_TRUE(s.step(in, out).ok());
}

} // namespace
