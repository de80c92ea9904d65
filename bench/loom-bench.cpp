//===- loom-bench.cpp - time one compiled model function ---------------===//
//
// `loom-bench MODEL.loom --cid C3 --mode=train --T 50 --B 32`: compiles the
// model (inference) or its training step (forward, backward, clipping,
// optimizer update) once, runs it on random inputs --warmup times, then
// --reps times, and prints one JSON line in bench-peers' raw format
// ({"cid", "peer": "loom", "threads", "median_s", "p10_s", "p90_s", "reps"},
// plus "compile_s"). Buffers are allocated once, outside the timed calls.
//
//===----------------------------------------------------------------------===//

#include "codegen/Jit.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "ir/LoomDialect.h"
#include "passes/Passes.h"
#include "runtime/ModelBinding.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>

using namespace loom;
namespace cl = llvm::cl;

static cl::opt<std::string> modelFile(cl::Positional, cl::Required,
                                      cl::desc("<model.loom>"));
static cl::opt<std::string> cid("cid", cl::desc("Configuration id"),
                                cl::init("?"));
static cl::opt<std::string> peerName("peer", cl::desc("Name in the report"),
                                     cl::init("loom"));
enum class Mode { Infer, Train };
static cl::opt<Mode>
    mode("mode", cl::init(Mode::Infer),
         cl::values(clEnumValN(Mode::Infer, "infer", "the model function"),
                    clEnumValN(Mode::Train, "train", "one training step")));
static cl::opt<int64_t> seqLen("T", cl::desc("Sequence length"), cl::init(50));
static cl::opt<int64_t> batch("B", cl::desc("Batch size"), cl::init(1));
static cl::opt<std::string>
    optimizer("optimizer", cl::desc("sgd or adam (train)"), cl::init("sgd"));
static cl::opt<bool> clip("clip", cl::desc("Clip the gradient norm (train)"));
static cl::opt<int> reps("reps", cl::desc("Timed runs"), cl::init(20));
static cl::opt<int> warmup("warmup", cl::desc("Untimed runs"), cl::init(3));
static cl::opt<double>
    minSeconds("min-seconds",
               cl::desc("Keep repeating until this much time is measured"),
               cl::init(1.0));
static cl::opt<int> threads("bench-threads",
                            cl::desc("Threads the compiled code runs on"),
                            cl::init(1));
static cl::opt<std::string> mcpu("mcpu", cl::desc("Target CPU"));
static cl::opt<unsigned>
    unroll("unroll", cl::desc("Time steps per loop iteration (0: default)"),
           cl::init(0));
static cl::opt<std::string> mattr("mattr", cl::desc("Target features"));
static cl::opt<unsigned> optLevel("O", cl::desc("LLVM optimization level"),
                                  cl::init(2));
static cl::opt<bool>
    bf16("bf16", cl::desc("Store packed weights as bf16 (inference); also "
                          "runs the f32 code once and reports the largest "
                          "output difference"));
static cl::list<std::string>
    disabledPasses("disable-pass", cl::CommaSeparated,
                   cl::desc("Leave these passes out (the ablation)"));

static int fail(const llvm::Twine &msg) {
  llvm::errs() << "loom-bench: error: " << msg << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "time a compiled loom model\n");
  auto buffer = llvm::MemoryBuffer::getFile(modelFile, /*IsText=*/true);
  if (!buffer)
    return fail(modelFile + ": " + buffer.getError().message());
  auto source = parseSource(std::move(*buffer));
  if (!source)
    return 1;
  mlir::DialectRegistry registry;
  registerCodegen(registry);
  mlir::MLIRContext context(registry);
  auto module = generate(context, *source);
  if (!module)
    return 1;
  auto model = findModel(*module);
  if (!model)
    return fail(model.error());
  if (bf16 && mode == Mode::Train)
    return fail("--bf16 is for inference");
  std::string name = model->getName().str();
  std::vector<std::string> disabled(disabledPasses.begin(),
                                    disabledPasses.end());
  if (mode == Mode::Train) {
    std::string pipeline = withoutPasses(kGradientPipeline, disabled);
    pipeline += (pipeline.empty() ? "" : ",") +
                std::string("loom-train-step{optimizer=") + optimizer +
                (clip ? " clip=true" : "") + "}";
    if (mlir::failed(runPipeline(*module, pipeline.c_str())))
      return fail("building the training step failed");
    name += "_step";
  }
  auto fn = module->lookupSymbol<mlir::func::FuncOp>(name);
  if (!fn)
    return fail("no function " + name + " (does the model have a loss?)");

  TargetOptions target;
  target.cpu = mcpu;
  target.features = mattr;
  target.threads = unsigned(std::max(threads.getValue(), 1));
  target.unroll = unroll;
  target.disabledPasses = disabled;
  target.bf16Weights = bf16;
  target.optLevel = optLevel;
  std::string error;
  auto t0 = std::chrono::steady_clock::now();
  auto jit = JitModel::compile(*module, name, target, error);
  if (!jit)
    return fail(error);
  double compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();

  // Random inputs: ids in [0, 10) (every benchmark vocabulary is larger),
  // lengths = T, scalars as an optimizer would pass them, floats in ±0.5.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uni(-0.5f, 0.5f);
  const std::map<std::string, float> scalars = {{"lr", 0.01f},
                                                {"weight_decay", 0.0f},
                                                {"max_norm", 0.25f},
                                                {"l1", 0.0f},
                                                {"momentum", 0.9f},
                                                {"momentum_decay", 0.9f},
                                                {"momentum_scale", 1},
                                                {"beta1", 0.9f},
                                                {"beta2", 0.999f},
                                                {"one_minus_beta1", 0.1f},
                                                {"one_minus_beta2", 0.001f},
                                                {"eps", 1e-8f},
                                                {"step_size", 0.001f},
                                                {"bias_correction2_sqrt", 0.5f},
                                                {"decay", 1.0f}};
  ModelSignature sig = signatureOf(fn);
  std::vector<Tensor> inputs;
  std::vector<std::vector<int64_t>> shapes;
  for (const ModelPort &in : sig.inputs) {
    std::vector<int64_t> shape;
    for (const std::string &d : in.dims) {
      int64_t v = 0;
      if (d == "T")
        v = seqLen;
      else if (d == "B")
        v = batch;
      else if (!llvm::to_integer(d, v))
        return fail("input '" + in.name + "' has size '" + d +
                    "' (only T and B may be run-time sizes here)");
      shape.push_back(v);
    }
    if (in.isInt) {
      Tensor t = Tensor::zeros(DType::I64, shape);
      int64_t *p = t.i64Data();
      for (int64_t k = 0; k < t.numElements(); ++k)
        p[k] = in.name == "lengths"         ? seqLen
               : in.name == kDropoutKeyName ? (k == 0 ? 1 : 0)
                                            : int64_t(rng() % 10);
      inputs.push_back(std::move(t));
    } else {
      Tensor t = Tensor::zeros(DType::F32, shape);
      float *p = t.f32Data();
      auto it = scalars.find(in.name);
      for (int64_t k = 0; k < t.numElements(); ++k)
        p[k] = it != scalars.end() ? it->second : uni(rng);
      inputs.push_back(std::move(t));
    }
    shapes.push_back(inputs.back().shape);
  }
  auto outShapes = inferOutputShapes(fn, shapes);
  if (!outShapes)
    return fail(outShapes.error());
  std::map<std::string, std::vector<int64_t>> paramShapes;
  for (const ParamInfo &p : parametersOf(fn))
    paramShapes[p.name] = p.shape;
  std::vector<Tensor> weights, outputs;
  for (const std::string &p : jit->parameterNames()) {
    Tensor t = Tensor::zeros(DType::F32, paramShapes[p]);
    float *d = t.f32Data();
    bool state = llvm::StringRef(p).starts_with("optimizer.");
    for (int64_t k = 0; k < t.numElements(); ++k)
      d[k] = state ? 0.0f : 0.2f * uni(rng);
    weights.push_back(std::move(t));
  }
  auto refsTo = [](std::vector<Tensor> &tensors) {
    std::vector<BufferRef> refs;
    for (Tensor &t : tensors)
      refs.push_back({t.data.data(), t.shape});
    return refs;
  };
  auto zeroOutputs = [&]() {
    std::vector<Tensor> ts;
    for (const auto &s : *outShapes)
      ts.push_back(Tensor::zeros(DType::F32, s));
    return ts;
  };
  outputs = zeroOutputs();
  std::vector<BufferRef> in = refsTo(inputs), w = refsTo(weights),
                         out = refsTo(outputs);

  // Inference packs the weights once (as loom run does); a training step
  // packs them on every call, since every step changes them.
  auto call = [&]() {
    return mode == Mode::Train ? jit->run(in, w, out, error)
                               : jit->runPrepacked(in, out, error);
  };
  if (mode == Mode::Infer && !jit->setWeights(w, error))
    return fail(error);
  for (int k = 0; k < warmup; ++k)
    if (!call())
      return fail(error);
  std::vector<double> times;
  double total = 0;
  while (int(times.size()) < reps || total < minSeconds) {
    auto s = std::chrono::steady_clock::now();
    if (!call())
      return fail(error);
    double dt =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - s)
            .count();
    times.push_back(dt);
    total += dt;
    if (times.size() >= 10000)
      break;
  }
  // bf16: the outputs against the f32 code's on the same inputs.
  double maxAbs = 0, maxRef = 0;
  if (bf16) {
    TargetOptions exact = target;
    exact.bf16Weights = false;
    auto ref = JitModel::compile(*module, name, exact, error);
    if (!ref)
      return fail(error);
    std::vector<Tensor> refOut = zeroOutputs();
    std::vector<BufferRef> ro = refsTo(refOut);
    if (!call() || !ref->run(in, w, ro, error))
      return fail(error);
    for (size_t i = 0; i < outputs.size(); ++i)
      for (int64_t k = 0; k < outputs[i].numElements(); ++k) {
        double e = refOut[i].f32Data()[k];
        maxAbs = std::max(maxAbs, std::abs(outputs[i].f32Data()[k] - e));
        maxRef = std::max(maxRef, std::abs(e));
      }
  }
  std::sort(times.begin(), times.end());
  auto pct = [&](double q) {
    return times[std::min(times.size() - 1, size_t(q * times.size()))];
  };
  llvm::outs() << llvm::format(
      "{\"cid\": \"%s\", \"peer\": \"%s\", \"threads\": %d, \"median_s\": "
      "%.6g, \"p10_s\": %.6g, \"p90_s\": %.6g, \"reps\": %zu, \"compile_s\": "
      "%.3f",
      cid.c_str(), peerName.c_str(), int(threads), pct(0.5), pct(0.1), pct(0.9),
      times.size(), compileSeconds);
  if (bf16)
    llvm::outs() << llvm::format(", \"bf16_max_abs_err\": %.3g, "
                                 "\"max_abs_output\": %.3g",
                                 maxAbs, maxRef);
  llvm::outs() << "}\n";
  return 0;
}
