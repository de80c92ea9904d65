//===- Loom.cpp - the loom embedding API ------------------------------===//
//
// loom::Module wraps a parsed model, its compiled JitModels (the model, and
// with training its gradient and step functions) and the text of every
// phase; loom::Session the weights, packed weights, recurrent state and one
// reusable argument frame. Every check the CLI makes on its inputs is made
// here too, with the same messages; the checks that need shape inference run
// once per set of input shapes, so a streaming step allocates nothing.
//
//===----------------------------------------------------------------------===//

#include "loom/loom.hpp"

#include "codegen/Jit.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "frontend/Parser.h"
#include "ir/LoomDialect.h"
#include "passes/TrainSettings.h"
#include "runtime/FileIO.h"
#include "runtime/ModelBinding.h"
#include "runtime/SafeTensors.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>

using loom::Expected;
using loom::Result;

namespace loom {

namespace {

Result failure(const std::string &message) { return Result::failure(message); }

/// What an exception inside the library becomes (none crosses the API):
/// in practice std::bad_alloc.
Result exceptionFailure() {
  return failure("out of memory (or another exception inside loom)");
}

std::string shapeText(const int64_t *shape, int rank) {
  return shapeString(std::vector<int64_t>(shape, shape + rank));
}

std::string printedModule(mlir::ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  os << "\n";
  return text;
}

/// The file names `loom compile --dump-phases-to` writes, by Phase.
constexpr const char *kPhaseFiles[] = {"0-ast.txt",     "1-loom.mlir",
                                       "2-linalg.mlir", "3-llvm-dialect.mlir",
                                       "4-llvm-ir.ll",  "5-asm.s"};
constexpr int kNumPhases = 6;

} // namespace

struct Module::Impl {
  CompileOptions options;
  TargetOptions target;
  std::string diagnostics; // the compile's remarks (and warnings)
  std::string compileText; // where the SourceMgr collects while compiling
  mlir::MLIRContext context;
  std::unique_ptr<ParsedSource> source;
  mlir::OwningOpRef<mlir::ModuleOp> module;   // as generated
  mlir::OwningOpRef<mlir::ModuleOp> training; // with _grad and _step
  mlir::func::FuncOp func, gradFn, stepFn;
  std::string name;
  ModelSignature sig, gradSig, stepSig;
  std::vector<PortInfo> inputs, outputs;
  std::vector<ParameterInfo> params;
  std::vector<ParamInfo> stepParams; // parameters and optimizer slots
  // Streaming: the state inputs, the output feeding each, and the rest.
  std::vector<int> stateInputs, stateOutputs, dataInputs, dataOutputs;
  std::unique_ptr<JitModel> forward, step;
  // The gradient function is compiled on the first computeGradients (a
  // training loop needs only the step).
  mutable std::once_flag gradOnce;
  mutable std::unique_ptr<JitModel> grad;
  mutable std::string gradError;
  const JitModel *gradient() const {
    std::call_once(gradOnce, [&] {
      grad = JitModel::compile(*training, mlir::func::FuncOp(gradFn).getName(),
                               target, gradError);
    });
    return grad.get();
  }
  Optim optim;
  bool fromCache = false;
  // The text of every phase, made on the first ir() call.
  mutable std::once_flag phasesOnce;
  mutable std::string phases[kNumPhases];
  mutable std::string phaseError;
  mutable std::string phaseRemarks; // the remarks of computePhases

  Impl() : context(mlir::MLIRContext::Threading::DISABLED) {}
  bool compile(std::unique_ptr<llvm::MemoryBuffer> buffer, std::string &error);
  void computePhases() const;
  const std::string &phase(Phase p) const {
    if (p != Phase::AST && p != Phase::Loom)
      std::call_once(phasesOnce, [&] { computePhases(); });
    return phases[int(p)];
  }
  Result dump(const std::string &dir) const;
};

namespace {

/// Collects SourceMgr diagnostics (the frontend's) as text.
void collectDiagnostic(const llvm::SMDiagnostic &diag, void *context) {
  llvm::raw_string_ostream os(*static_cast<std::string *>(context));
  writeDiagnostic(os, diag);
}

ElementType elementTypeOf(const ModelPort &p) {
  return p.isInt ? ElementType::I64 : ElementType::F32;
}

} // namespace

bool Module::Impl::compile(std::unique_ptr<llvm::MemoryBuffer> buffer,
                           std::string &error) {
  target.triple = options.triple;
  target.cpu = options.cpu;
  target.features = options.features;
  target.optLevel = options.optLevel;
  target.threads = options.threads;
  target.unroll = options.unroll;
  target.bf16Weights = options.bf16Weights;
  target.cacheDir = options.cacheDir;
  if (const char *dir = std::getenv("LOOM_CACHE_DIR");
      target.cacheDir.empty() && dir)
    target.cacheDir = dir;
  if (options.optLevel > 3) {
    error = "optLevel must be between 0 and 3, got " +
            std::to_string(options.optLevel);
    return false;
  }
  if (options.unroll > unsigned(kMaxUnroll)) {
    error = "unroll must be between 0 (the compiler's choice) and " +
            std::to_string(kMaxUnroll) + ", got " +
            std::to_string(options.unroll);
    return false;
  }
  if (options.bf16Weights && options.training) {
    error = "bf16Weights is for inference only; it cannot be combined with "
            "training";
    return false;
  }
  // Every diagnostic is collected clang-style with the source line, as
  // `loom` prints it: the frontend's through the SourceMgr's handler, and
  // MLIR's (remarks, and errors should a check miss one) through the
  // SourceMgrDiagnosticHandler, which prints through the same SourceMgr.
  source = parseSource(std::move(buffer), collectDiagnostic, &compileText);
  if (!source) {
    error = compileText;
    return false;
  }
  mlir::DialectRegistry registry;
  registerCodegen(registry);
  context.appendDialectRegistry(registry);
  context.printOpOnDiagnostic(false);
  // MLIR's diagnostics print through the SourceMgr, whose handler collects
  // them (those without a source location go to the stream directly).
  llvm::raw_string_ostream compileOs(compileText);
  mlir::SourceMgrDiagnosticHandler handler(source->sourceMgr, &context,
                                           compileOs);
  module = generate(context, *source);
  if (!module) {
    error = compileText;
    return false;
  }
  auto found = findModel(*module, options.model);
  if (!found) {
    error = found.error();
    return false;
  }
  func = *found;
  name = func.getName().str();
  if (Status st = checkParameterMemory(func); !st.ok()) {
    error = st.error();
    return false;
  }
  {
    llvm::raw_string_ostream os(phases[int(Phase::AST)]);
    ast::dump(source->user, os);
  }
  phases[int(Phase::Loom)] = printedModule(*module);
  sig = signatureOf(func);
  for (const ModelPort &p : sig.inputs)
    inputs.push_back({p.name, elementTypeOf(p), p.dims, ""});
  for (size_t k = 0; k < sig.outputs.size(); ++k) {
    PortInfo out{sig.outputs[k].name, ElementType::F32, {}, ""};
    if (auto s = func.getResultAttrOfType<mlir::StringAttr>(k, kStateOfAttr))
      out.state = s.str();
    for (size_t i = 0; i < inputs.size(); ++i)
      if (!out.state.empty() && inputs[i].name == out.state) {
        inputs[i].state = out.name;
        stateInputs.push_back(int(i));
        stateOutputs.push_back(int(k));
      }
    outputs.push_back(out);
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].state.empty())
      dataInputs.push_back(int(i));
  for (size_t k = 0; k < outputs.size(); ++k)
    if (outputs[k].state.empty())
      dataOutputs.push_back(int(k));
  for (const ParamInfo &p : parametersOf(func))
    params.push_back({p.name, p.shape});

  auto fail = [&](const std::string &what) {
    error = what + (compileText.empty() ? "" : "\n" + compileText);
    return false;
  };
  forward = JitModel::compile(*module, name, target, error);
  if (!forward)
    return fail(error);
  if (options.training) {
    auto lossFn = module->lookupSymbol<mlir::func::FuncOp>(name + "_loss");
    if (!lossFn)
      return fail("model '" + name +
                  "' has no loss; add a line like `loss cross_entropy(logits, "
                  "targets)`");
    std::string settingsError;
    Settings s(lossFn, options.trainSettings, [&](const std::string &m) {
      if (settingsError.empty())
        settingsError = m;
    });
    if (!optim.read(s))
      return fail(settingsError);
    training = module->clone();
    std::string pipeline = optim.pipeline();
    if (mlir::failed(runPipeline(*training, pipeline.c_str())))
      return fail("building the training step failed");
    gradFn = training->lookupSymbol<mlir::func::FuncOp>(name + "_grad");
    stepFn = training->lookupSymbol<mlir::func::FuncOp>(name + "_step");
    if (!gradFn || !stepFn)
      return fail("building the training step produced no step function");
    gradSig = signatureOf(gradFn);
    stepSig = signatureOf(stepFn);
    stepParams = parametersOf(stepFn);
    step = JitModel::compile(*training, stepFn.getName(), target, error);
    if (!step)
      return fail(error);
  }
  fromCache = forward->fromCache() && (!step || step->fromCache());
  // Code from the cache was not lowered here, so there were no remarks:
  // they come with the phases, on demand.
  diagnostics = compileText;
  // LOOM_DUMP_DIR: every phase and the remarks, without changing the host.
  if (const char *dir = std::getenv("LOOM_DUMP_DIR"); dir && *dir) {
    Result r = dump(dir);
    if (!r)
      return fail(r.message());
  }
  return true;
}

void Module::Impl::computePhases() const {
  // The phases `loom compile` prints, on a copy of the generated module.
  mlir::OwningOpRef<mlir::ModuleOp> copy = module.get().clone();
  std::string error;
  // The SourceMgr hands what the handler prints to collectDiagnostic.
  source->sourceMgr.setDiagHandler(collectDiagnostic, &phaseRemarks);
  llvm::raw_string_ostream remarkOs(phaseRemarks);
  mlir::SourceMgrDiagnosticHandler handler(
      source->sourceMgr, const_cast<mlir::MLIRContext *>(&context), remarkOs);
  auto tm = createTargetMachine(target, error);
  if (!tm) {
    phaseError = error;
    return;
  }
  if (mlir::failed(
          runPipeline(*copy, loomToLinalgPipeline(target).c_str(), {}))) {
    phaseError = "lowering to linalg failed";
    return;
  }
  phases[int(Phase::Linalg)] = printedModule(*copy);
  if (mlir::failed(runPipeline(
          *copy,
          withoutPasses(linalgToLLVMPipeline(tm.get()), target.disabledPasses)
              .c_str(),
          {}))) {
    phaseError = "lowering to the LLVM dialect failed";
    return;
  }
  phases[int(Phase::LLVMDialect)] = printedModule(*copy);
  llvm::LLVMContext llvmContext;
  auto llvmModule =
      translateAndOptimize(*copy, llvmContext, *tm, target.optLevel, error);
  if (!llvmModule) {
    phaseError = error;
    return;
  }
  {
    llvm::raw_string_ostream os(phases[int(Phase::LLVMIR)]);
    llvmModule->print(os, nullptr);
  }
  llvm::SmallString<0> asmText;
  llvm::raw_svector_ostream os(asmText);
  if (!emitMachineCode(*llvmModule, *tm, /*assembly=*/true, os, error)) {
    phaseError = error;
    return;
  }
  phases[int(Phase::Asm)] = std::string(asmText);
}

Result Module::Impl::dump(const std::string &dir) const {
  llvm::SmallString<256> base(dir);
  llvm::sys::path::append(base, name);
  if (std::error_code ec = llvm::sys::fs::create_directories(base))
    return failure("LOOM_DUMP_DIR: " + std::string(base) + ": " + ec.message());
  auto write = [&](const char *file, const std::string &text) {
    llvm::SmallString<256> path(base);
    llvm::sys::path::append(path, file);
    std::vector<ByteRange> chunk{
        {reinterpret_cast<const uint8_t *>(text.data()), text.size()}};
    Status st = writeFileAtomic(std::string(path), chunk);
    return st.ok() ? Result() : failure("LOOM_DUMP_DIR: " + st.error());
  };
  for (int p = 0; p < kNumPhases; ++p) {
    const std::string &text = phase(Phase(p));
    if (!phaseError.empty())
      return failure("LOOM_DUMP_DIR: " + phaseError);
    if (Result r = write(kPhaseFiles[p], text); !r)
      return r;
  }
  return write("remarks.txt", fromCache ? phaseRemarks : diagnostics);
}

Module::Module() : pimpl(std::make_unique<Impl>()) {}
Module::~Module() = default;

namespace {
Expected<std::shared_ptr<const Module>>
finishCompile(std::shared_ptr<Module> m, Module::Impl &impl,
              std::unique_ptr<llvm::MemoryBuffer> buffer,
              const CompileOptions &options) {
  impl.options = options;
  std::string error;
  if (!impl.compile(std::move(buffer), error)) {
    while (!error.empty() && error.back() == '\n')
      error.pop_back();
    return failure(error);
  }
  return std::shared_ptr<const Module>(std::move(m));
}
} // namespace

Expected<std::shared_ptr<const Module>>
Module::compileFile(const std::string &path,
                    const CompileOptions &options) try {
  std::string error;
  auto buffer = readSourceFile(path, error);
  if (!buffer)
    return failure(error);
  std::shared_ptr<Module> m(new Module());
  return finishCompile(m, *m->pimpl, std::move(buffer), options);
} catch (...) {
  return exceptionFailure();
}

Expected<std::shared_ptr<const Module>>
Module::compileString(const std::string &source, const CompileOptions &options,
                      const std::string &bufferName) try {
  std::shared_ptr<Module> m(new Module());
  return finishCompile(m, *m->pimpl,
                       llvm::MemoryBuffer::getMemBufferCopy(source, bufferName),
                       options);
} catch (...) {
  return exceptionFailure();
}

const std::string &Module::name() const { return pimpl->name; }
const std::vector<PortInfo> &Module::inputs() const { return pimpl->inputs; }
const std::vector<PortInfo> &Module::outputs() const { return pimpl->outputs; }
const std::vector<ParameterInfo> &Module::parameters() const {
  return pimpl->params;
}
const std::string &Module::ir(Phase phase) const { return pimpl->phase(phase); }
const std::string &Module::remarks() const {
  if (!pimpl->fromCache)
    return pimpl->diagnostics;
  pimpl->phase(Phase::Linalg);
  return pimpl->phaseRemarks;
}
bool Module::hasTraining() const { return pimpl->step != nullptr; }
bool Module::fromCache() const { return pimpl->fromCache; }

//===----------------------------------------------------------------------===//
// Session
//===----------------------------------------------------------------------===//

struct Session::Impl {
  const Module::Impl &m;
  std::unique_ptr<ThreadPool> pool;
  std::map<std::string, Tensor> params; // and optimizer slots (training)
  bool weightsDirty = true;
  std::vector<BufferRef> weightRefs;
  JitModel::Packed packed;
  JitModel::Frame frame;
  // Checked input shapes (rank, then sizes, per input) and what they imply.
  std::vector<int64_t> checkedShapes;
  bool haveChecked = false;
  std::vector<std::vector<int64_t>> outShapes;
  std::vector<ValueCheck> checks;
  std::vector<const int64_t *> idData;
  std::vector<int64_t> counts;
  // Streaming: one state per state input, and where its next value goes.
  bool stateReady = false;
  std::vector<std::vector<int64_t>> stateShapes;
  std::vector<std::vector<float>> stateIn, stateOut;
  std::vector<TensorRef> allIn, allOut;
  // Training.
  std::map<std::string, Tensor> grads;
  int64_t steps = 0;

  explicit Impl(const Module::Impl &m)
      : m(m), frame(m.forward->frame()), idData(m.inputs.size()),
        counts(m.inputs.size()), allIn(m.inputs.size()),
        allOut(m.outputs.size()) {
    setThreads(m.options.threads);
  }
  void setThreads(unsigned n) {
    if (n == 0)
      n = ThreadPool::hardwareThreads();
    pool = n > 1 ? std::make_unique<ThreadPool>(n) : nullptr;
  }
  Result checkShapes(const std::vector<std::vector<int64_t>> &shapes) const;
  Result execute(const TensorRef *in, const TensorRef *out);
  Result prepareWeights();
  Result prepareStates(const std::vector<TensorRef> &inputs);
  /// Zero states shaped by `sizes` (marks them ready); `unbound` words the
  /// error for a state size `sizes` does not bind.
  Result allocateStates(
      const SizeBindings &sizes,
      const std::function<std::string(const ModelPort &, const std::string &)>
          &unbound);
  Expected<std::map<std::string, Tensor>>
  trainingInputs(mlir::func::FuncOp fn, const ModelSignature &sig,
                 const NamedInputs &given) const;
  Expected<std::vector<Tensor>> runTraining(const JitModel *compiled,
                                            mlir::func::FuncOp fn,
                                            const ModelSignature &sig,
                                            const NamedInputs &given,
                                            bool withSlots);
};

Session::Session(std::shared_ptr<const Module> module)
    : mod(std::move(module)), pimpl(std::make_unique<Impl>(mod->impl())) {}
Session::~Session() = default;

void Session::setThreads(unsigned threads) { pimpl->setThreads(threads); }

namespace {

/// The shape of `p` with its run-time sizes taken from `sizes`, or the
/// first size name `sizes` does not bind (in `missing`).
std::optional<std::vector<int64_t>> resolveShape(const ModelPort &p,
                                                 const SizeBindings &sizes,
                                                 std::string &missing) {
  std::vector<int64_t> shape;
  for (const std::string &d : p.dims) {
    if (!d.empty() && std::isdigit((unsigned char)d[0])) {
      shape.push_back(std::stoll(d));
    } else if (auto it = sizes.find(d); it != sizes.end()) {
      shape.push_back(it->second.first);
    } else {
      missing = d;
      return std::nullopt;
    }
  }
  return shape;
}

Result checkRef(const TensorRef &t, const std::string &what,
                ElementType expected) {
  if (t.rank < 0 || t.rank > TensorRef::kMaxRank)
    return failure(what + " has rank " + std::to_string(t.rank) +
                   "; ranks go up to " + std::to_string(TensorRef::kMaxRank));
  if (t.type != expected)
    return failure(what + " must be " +
                   (expected == ElementType::I64 ? "int64" : "float32") +
                   ", found " +
                   (t.type == ElementType::I64 ? "int64" : "float32"));
  if (!t.data)
    return failure(what + " has no data (a null pointer)");
  for (int k = 0; k < t.rank; ++k)
    if (t.shape[k] < 0)
      return failure(what + " has a negative size in its shape " +
                     shapeText(t.shape, t.rank));
  return Result();
}

} // namespace

Result Session::Impl::prepareWeights() {
  if (!weightsDirty)
    return Result();
  weightRefs.clear();
  for (const std::string &name : m.forward->parameterNames()) {
    auto it = params.find(name);
    if (it == params.end())
      return failure("the weights are not set: parameter '" + name +
                     "' has no value (call loadWeights, or setParameter for "
                     "every parameter, before running)");
    weightRefs.push_back({it->second.data.data(), it->second.shape});
  }
  std::string error;
  if (!m.forward->pack(weightRefs, packed, error))
    return failure(error);
  m.forward->bindWeights(frame, weightRefs, packed);
  weightsDirty = false;
  return Result();
}

Result Session::Impl::execute(const TensorRef *in, const TensorRef *out) {
  const ModelSignature &sig = m.sig;
  for (size_t i = 0; i < m.inputs.size(); ++i)
    if (Result r = checkRef(in[i], "input '" + m.inputs[i].name + "'",
                            m.inputs[i].type);
        !r)
      return r;
  // The shape checks run once per set of input shapes.
  bool same = haveChecked;
  size_t pos = 0;
  for (size_t i = 0; same && i < m.inputs.size(); ++i) {
    same = pos < checkedShapes.size() && checkedShapes[pos++] == in[i].rank;
    for (int k = 0; same && k < in[i].rank; ++k)
      same =
          pos < checkedShapes.size() && checkedShapes[pos++] == in[i].shape[k];
  }
  if (!same) {
    haveChecked = false;
    std::vector<std::vector<int64_t>> shapes;
    for (size_t i = 0; i < m.inputs.size(); ++i)
      shapes.emplace_back(in[i].shape, in[i].shape + in[i].rank);
    SizeBindings sizes;
    for (size_t i = 0; i < sig.inputs.size(); ++i) {
      Status st = checkInputShape(sig.inputs[i], shapes[i], sizes);
      if (!st.ok())
        return failure(st.error());
    }
    if (Status st = checkRunMemory(m.func, shapes); !st.ok())
      return failure(st.error());
    auto vc = valueChecksOf(m.func, shapes);
    if (!vc)
      return failure(vc.error());
    auto os = inferOutputShapes(m.func, shapes);
    if (!os)
      return failure(os.error());
    checks = vc.take();
    outShapes = os.take();
    checkedShapes.clear();
    for (const auto &s : shapes) {
      checkedShapes.push_back(int64_t(s.size()));
      checkedShapes.insert(checkedShapes.end(), s.begin(), s.end());
    }
    haveChecked = true;
  }
  for (size_t k = 0; k < m.outputs.size(); ++k) {
    std::string what = "output '" + m.outputs[k].name + "'";
    if (Result r = checkRef(out[k], what, ElementType::F32); !r)
      return r;
    const std::vector<int64_t> &want = outShapes[k];
    bool ok = size_t(out[k].rank) == want.size();
    for (size_t d = 0; ok && d < want.size(); ++d)
      ok = out[k].shape[d] == want[d];
    if (!ok)
      return failure(what + " must have shape " + shapeString(want) +
                     " for these inputs, found " +
                     shapeText(out[k].shape, out[k].rank));
  }
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    idData[i] = in[i].type == ElementType::I64
                    ? static_cast<const int64_t *>(in[i].data)
                    : nullptr;
    counts[i] = in[i].numElements();
  }
  Status values = applyValueChecks(checks, sig, idData.data(), counts.data());
  if (!values.ok())
    return failure(values.error());
  if (Result r = prepareWeights(); !r)
    return r;
  unsigned nIn = m.forward->numInputs();
  for (unsigned i = 0; i < nIn; ++i)
    frame.set(i, in[i].data, in[i].shape);
  unsigned firstOut = frame.size() - m.forward->numOutputs();
  for (unsigned k = 0; k < m.forward->numOutputs(); ++k)
    frame.set(firstOut + k, out[k].data, out[k].shape);
  m.forward->call(frame, pool.get());
  return Result();
}

Expected<std::vector<std::vector<int64_t>>>
Session::outputShapes(const std::vector<TensorRef> &inputs) const try {
  const Module::Impl &m = pimpl->m;
  if (inputs.size() != m.inputs.size())
    return failure("the model takes " + std::to_string(m.inputs.size()) +
                   " inputs, got " + std::to_string(inputs.size()));
  std::vector<std::vector<int64_t>> shapes;
  SizeBindings sizes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (Result r = checkRef(inputs[i], "input '" + m.inputs[i].name + "'",
                            m.inputs[i].type);
        !r)
      return r;
    shapes.emplace_back(inputs[i].shape, inputs[i].shape + inputs[i].rank);
    Status st = checkInputShape(m.sig.inputs[i], shapes.back(), sizes);
    if (!st.ok())
      return failure(st.error());
  }
  auto os = inferOutputShapes(m.func, shapes);
  if (!os)
    return failure(os.error());
  return os.take();
} catch (...) {
  return exceptionFailure();
}

Result Session::run(const std::vector<TensorRef> &inputs,
                    const std::vector<TensorRef> &outputs) try {
  const Module::Impl &m = pimpl->m;
  if (inputs.size() != m.inputs.size() || outputs.size() != m.outputs.size())
    return failure("the model takes " + std::to_string(m.inputs.size()) +
                   " inputs and " + std::to_string(m.outputs.size()) +
                   " outputs, got " + std::to_string(inputs.size()) + " and " +
                   std::to_string(outputs.size()));
  return pimpl->execute(inputs.data(), outputs.data());
} catch (...) {
  return exceptionFailure();
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

Result Session::loadWeights(const std::string &path) try {
  auto file = readSafeTensors(path);
  if (!file)
    return failure(file.error());
  const Module::Impl &m = pimpl->m;
  auto bound = bindWeights(m.func, *file);
  if (!bound)
    return failure(path + ": " + bound.error());
  for (auto &[name, t] : *bound)
    pimpl->params[name] = std::move(t);
  pimpl->weightsDirty = true;
  return Result();
} catch (...) {
  return exceptionFailure();
}

namespace {
const ParameterInfo *findParameter(const Module::Impl &m,
                                   const std::string &name) {
  for (const ParameterInfo &p : m.params)
    if (p.name == name)
      return &p;
  return nullptr;
}

Result unknownParameter(const Module::Impl &m, const std::string &name) {
  std::string list;
  for (const ParameterInfo &p : m.params)
    list += (list.empty() ? "" : ", ") + p.name;
  return failure("the model has no parameter '" + name +
                 "' (its parameters: " + (list.empty() ? "none" : list) + ")");
}

Result copyOut(const Tensor &t, const std::string &what, float *data,
               size_t count) {
  if (size_t(t.numElements()) != count)
    return failure(what + " has " + std::to_string(t.numElements()) +
                   " elements " + t.shapeString() + ", the buffer " +
                   std::to_string(count));
  if (!data && count)
    return failure(what + ": the buffer is a null pointer");
  std::copy(t.f32Data(), t.f32Data() + count, data);
  return Result();
}
} // namespace

Result Session::setParameter(const std::string &name, const float *data,
                             const std::vector<int64_t> &shape) try {
  const ParameterInfo *p = findParameter(pimpl->m, name);
  if (!p)
    return unknownParameter(pimpl->m, name);
  if (shape != p->shape)
    return failure("parameter '" + name + "' has shape " +
                   shapeString(p->shape) + ", got " + shapeString(shape));
  Tensor t = Tensor::zeros(DType::F32, shape);
  if (t.numElements() && !data)
    return failure("parameter '" + name + "': the data is a null pointer");
  std::copy(data, data + t.numElements(), t.f32Data());
  pimpl->params[name] = std::move(t);
  pimpl->weightsDirty = true;
  return Result();
} catch (...) {
  return exceptionFailure();
}

Result Session::getParameter(const std::string &name, float *data,
                             size_t count) const try {
  if (!findParameter(pimpl->m, name))
    return unknownParameter(pimpl->m, name);
  auto it = pimpl->params.find(name);
  if (it == pimpl->params.end())
    return failure("parameter '" + name + "' has no value yet");
  return copyOut(it->second, "parameter '" + name + "'", data, count);
} catch (...) {
  return exceptionFailure();
}

Result Session::saveWeights(const std::string &path) const try {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const ParameterInfo &p : pimpl->m.params) {
    auto it = pimpl->params.find(p.name);
    if (it == pimpl->params.end())
      return failure("parameter '" + p.name + "' has no value yet");
    tensors.push_back({p.name, it->second});
  }
  Status st = writeSafeTensors(path, tensors, {});
  return st.ok() ? Result() : failure(st.error());
} catch (...) {
  return exceptionFailure();
}

//===----------------------------------------------------------------------===//
// Streaming
//===----------------------------------------------------------------------===//

Result Session::Impl::prepareStates(const std::vector<TensorRef> &inputs) {
  if (stateReady)
    return Result();
  // The states' run-time sizes (the batch) come from the data inputs.
  SizeBindings sizes;
  for (size_t k = 0; k < m.dataInputs.size(); ++k) {
    const TensorRef &t = inputs[k];
    const ModelPort &p = m.sig.inputs[m.dataInputs[k]];
    if (Result r = checkRef(t, "input '" + p.name + "'",
                            m.inputs[m.dataInputs[k]].type);
        !r)
      return r;
    Status st = checkInputShape(
        p, std::vector<int64_t>(t.shape, t.shape + t.rank), sizes);
    if (!st.ok())
      return failure(st.error());
  }
  return allocateStates(sizes, [&](const ModelPort &p, const std::string &d) {
    return "state input '" + p.name + "' has size '" + d +
           "', which no other input determines; set it with setState";
  });
}

Result Session::Impl::allocateStates(
    const SizeBindings &sizes,
    const std::function<std::string(const ModelPort &, const std::string &)>
        &unbound) {
  std::vector<std::vector<int64_t>> shapes;
  for (int i : m.stateInputs) {
    std::string missing;
    auto shape = resolveShape(m.sig.inputs[i], sizes, missing);
    if (!shape)
      return failure(unbound(m.sig.inputs[i], missing));
    shapes.push_back(*shape);
  }
  stateShapes = std::move(shapes);
  stateIn.clear();
  stateOut.clear();
  for (const auto &sh : stateShapes) {
    int64_t n = 1;
    for (int64_t d : sh)
      n *= d;
    stateIn.emplace_back(size_t(n), 0.0f);
    stateOut.emplace_back(size_t(n), 0.0f);
  }
  stateReady = true;
  return Result();
}

Result Session::step(const std::vector<TensorRef> &inputs,
                     const std::vector<TensorRef> &outputs) try {
  Impl &s = *pimpl;
  const Module::Impl &m = s.m;
  if (inputs.size() != m.dataInputs.size() ||
      outputs.size() != m.dataOutputs.size())
    return failure("a streaming step takes the " +
                   std::to_string(m.dataInputs.size()) +
                   " inputs that are not recurrent states and the " +
                   std::to_string(m.dataOutputs.size()) +
                   " outputs that are not final states, got " +
                   std::to_string(inputs.size()) + " and " +
                   std::to_string(outputs.size()));
  bool fresh = !s.stateReady;
  if (Result r = s.prepareStates(inputs); !r)
    return r;
  for (size_t k = 0; k < m.dataInputs.size(); ++k)
    s.allIn[m.dataInputs[k]] = inputs[k];
  for (size_t k = 0; k < m.dataOutputs.size(); ++k)
    s.allOut[m.dataOutputs[k]] = outputs[k];
  for (size_t k = 0; k < m.stateInputs.size(); ++k) {
    const std::vector<int64_t> &shape = s.stateShapes[k];
    s.allIn[m.stateInputs[k]] = TensorRef(s.stateIn[k].data(), ElementType::F32,
                                          shape.data(), shape.size());
    s.allOut[m.stateOutputs[k]] = TensorRef(
        s.stateOut[k].data(), ElementType::F32, shape.data(), shape.size());
  }
  if (Result r = s.execute(s.allIn.data(), s.allOut.data()); !r) {
    // A failed first step leaves the states unset, as they were.
    if (fresh)
      s.stateReady = false;
    return r;
  }
  for (size_t k = 0; k < m.stateInputs.size(); ++k)
    std::swap(s.stateIn[k], s.stateOut[k]);
  return Result();
} catch (...) {
  return exceptionFailure();
}

void Session::resetState() {
  pimpl->stateReady = false;
  pimpl->stateIn.clear();
  pimpl->stateOut.clear();
  pimpl->stateShapes.clear();
}

namespace {
int stateIndex(const Module::Impl &m, const std::string &name) {
  for (size_t k = 0; k < m.stateInputs.size(); ++k)
    if (m.inputs[m.stateInputs[k]].name == name)
      return int(k);
  return -1;
}

Result unknownState(const Module::Impl &m, const std::string &name) {
  std::string list;
  for (int i : m.stateInputs)
    list += (list.empty() ? "" : ", ") + m.inputs[i].name;
  return failure("the model has no recurrent state input '" + name +
                 "' (its states: " + (list.empty() ? "none" : list) + ")");
}
} // namespace

Expected<std::vector<int64_t>>
Session::stateShape(const std::string &name) const try {
  int k = stateIndex(pimpl->m, name);
  if (k < 0)
    return unknownState(pimpl->m, name);
  if (!pimpl->stateReady)
    return std::vector<int64_t>();
  return pimpl->stateShapes[k];
} catch (...) {
  return exceptionFailure();
}

Result Session::getState(const std::string &name, float *data,
                         size_t count) const try {
  int k = stateIndex(pimpl->m, name);
  if (k < 0)
    return unknownState(pimpl->m, name);
  if (!pimpl->stateReady)
    return failure("state '" + name +
                   "' has no value yet: it is set by the first step or by "
                   "setState");
  Tensor t = Tensor::f32(pimpl->stateShapes[k], pimpl->stateIn[k]);
  return copyOut(t, "state '" + name + "'", data, count);
} catch (...) {
  return exceptionFailure();
}

Result Session::setState(const std::string &name, const float *data,
                         const std::vector<int64_t> &shape) try {
  Impl &s = *pimpl;
  int k = stateIndex(s.m, name);
  if (k < 0)
    return unknownState(s.m, name);
  const ModelPort &p = s.m.sig.inputs[s.m.stateInputs[k]];
  SizeBindings sizes;
  Status st = checkInputShape(p, shape, sizes);
  if (!st.ok())
    return failure(st.error());
  if (!data)
    return failure("state '" + name + "': the data is a null pointer");
  if (!s.stateReady) {
    // The other states' shapes follow from this one's sizes.
    Result r =
        s.allocateStates(sizes, [&](const ModelPort &q, const std::string &d) {
          return "state '" + q.name + "' has size '" + d + "', which '" + name +
                 "' does not determine";
        });
    if (!r)
      return r;
  } else if (shape != s.stateShapes[k]) {
    return failure("state '" + name + "' has shape " +
                   shapeString(s.stateShapes[k]) + ", got " +
                   shapeString(shape) +
                   " (resetState() first to change the "
                   "batch size)");
  }
  std::copy(data, data + s.stateIn[k].size(), s.stateIn[k].begin());
  return Result();
} catch (...) {
  return exceptionFailure();
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

Expected<std::map<std::string, Tensor>>
Session::Impl::trainingInputs(mlir::func::FuncOp fn, const ModelSignature &sig,
                              const NamedInputs &given) const {
  std::map<std::string, Tensor> named;
  SizeBindings sizes;
  for (const auto &[name, t] : given) {
    const ModelPort *port = nullptr;
    for (const ModelPort &p : sig.inputs)
      if (p.name == name)
        port = &p;
    if (!port) {
      std::string list;
      for (const ModelPort &p : sig.inputs)
        if ((p.dims.size() || p.isInt) && p.name != kDropoutKeyName)
          list += (list.empty() ? "" : ", ") + p.name;
      return failure("the model has no input '" + name +
                     "' (its inputs: " + list + ")");
    }
    if (named.count(name))
      return failure("input '" + name + "' is given twice");
    if (Result r = checkRef(t, "input '" + name + "'", elementTypeOf(*port));
        !r)
      return r;
    std::vector<int64_t> shape(t.shape, t.shape + t.rank);
    Status st = checkInputShape(*port, shape, sizes);
    if (!st.ok())
      return failure(st.error());
    Tensor copy = Tensor::zeros(port->isInt ? DType::I64 : DType::F32, shape);
    std::memcpy(copy.data.data(), t.data, copy.data.size());
    named[name] = std::move(copy);
  }
  // Absent states are zeros; dropout is off.
  for (const ModelPort &p : sig.inputs) {
    if (named.count(p.name) || p.name == kDropoutKeyName)
      continue;
    bool isState = false;
    for (int i : m.stateInputs)
      isState |= m.inputs[i].name == p.name;
    if (!isState)
      continue;
    std::string missing;
    auto shape = resolveShape(p, sizes, missing);
    if (!shape)
      return failure("missing input '" + p.name + "' (declared " +
                     p.describe() + ")");
    named[p.name] = Tensor::zeros(DType::F32, *shape);
  }
  for (unsigned i = 0; i < fn.getNumArguments(); ++i)
    if (auto n = fn.getArgAttrOfType<mlir::StringAttr>(i, kNameAttr);
        n && n.getValue() == kDropoutKeyName)
      named[kDropoutKeyName] = Tensor::i64({2}, {-1, 0});
  return named;
}

Expected<std::vector<Tensor>>
Session::Impl::runTraining(const JitModel *compiled, mlir::func::FuncOp fn,
                           const ModelSignature &sig, const NamedInputs &given,
                           bool withSlots) {
  if (!compiled)
    return failure("this module was compiled without training; set "
                   "CompileOptions::training");
  const JitModel &jit = *compiled;
  auto named = trainingInputs(fn, sig, given);
  if (!named)
    return named.error();
  if (withSlots)
    for (const auto &[k, v] : m.optim.scalars(steps, m.optim.lr))
      for (const ModelPort &p : sig.inputs)
        if (p.name == k)
          (*named)[k] = Tensor::f32({}, {v});
  auto bound = bindInputs(fn, *named);
  if (!bound)
    return failure(bound.error());
  Status values = checkInputValues(fn, *bound);
  if (!values.ok())
    return failure(values.error());
  std::vector<std::vector<int64_t>> shapes;
  for (const Tensor &t : *bound)
    shapes.push_back(t.shape);
  auto outShapes = inferOutputShapes(fn, shapes);
  if (!outShapes)
    return failure(outShapes.error());
  std::vector<BufferRef> in, weights, out;
  for (Tensor &t : *bound)
    in.push_back({t.data.data(), t.shape});
  for (const std::string &name : jit.parameterNames()) {
    auto it = params.find(name);
    if (it == params.end()) {
      if (!withSlots || findParameter(m, name))
        return failure("the weights are not set: parameter '" + name +
                       "' has no value (call loadWeights, or setParameter "
                       "for every parameter, before training)");
      // An optimizer slot (momentum, Adam's moments) starts at zero.
      for (const ParamInfo &pi : m.stepParams)
        if (pi.name == name)
          it = params.emplace(name, Tensor::zeros(DType::F32, pi.shape)).first;
      if (it == params.end())
        return failure("internal: unknown step parameter '" + name + "'");
    }
    weights.push_back({it->second.data.data(), it->second.shape});
  }
  std::vector<Tensor> results;
  for (const auto &shape : *outShapes)
    results.push_back(Tensor::zeros(DType::F32, shape));
  for (Tensor &t : results)
    out.push_back({t.data.data(), t.shape});
  std::string error;
  JitModel::Packed pk;
  if (!jit.pack(weights, pk, error))
    return failure(error);
  JitModel::Frame f = jit.frame();
  for (size_t i = 0; i < in.size(); ++i)
    f.set(unsigned(i), in[i].data, in[i].shape.data());
  jit.bindWeights(f, weights, pk);
  for (size_t k = 0; k < out.size(); ++k)
    f.set(f.size() - unsigned(out.size()) + unsigned(k), out[k].data,
          out[k].shape.data());
  jit.call(f, pool.get());
  return results;
}

Expected<float> Session::computeGradients(const NamedInputs &inputs) try {
  Impl &s = *pimpl;
  const JitModel *grad = s.m.step ? s.m.gradient() : nullptr;
  if (s.m.step && !grad)
    return failure("compiling the gradient failed: " + s.m.gradError);
  auto results = s.runTraining(grad, s.m.gradFn, s.m.gradSig, inputs, false);
  if (!results)
    return results.error();
  s.grads.clear();
  for (size_t k = 1; k < results->size(); ++k)
    if (!mlir::func::FuncOp(s.m.gradFn).getResultAttr(k, kCarryAttr))
      s.grads[s.m.gradSig.outputs[k].name] = std::move((*results)[k]);
  return (*results)[0].f32Data()[0];
} catch (...) {
  return exceptionFailure();
}

Result Session::gradient(const std::string &name, float *data,
                         size_t count) const try {
  if (!findParameter(pimpl->m, name))
    return unknownParameter(pimpl->m, name);
  auto it = pimpl->grads.find(name);
  if (it == pimpl->grads.end())
    return failure("no gradient of '" + name +
                   "' yet: call computeGradients first");
  return copyOut(it->second, "the gradient of '" + name + "'", data, count);
} catch (...) {
  return exceptionFailure();
}

Expected<float> Session::trainStep(const NamedInputs &inputs) try {
  Impl &s = *pimpl;
  auto results =
      s.runTraining(s.m.step.get(), s.m.stepFn, s.m.stepSig, inputs, true);
  if (!results)
    return results.error();
  float loss = (*results)[0].f32Data()[0];
  for (size_t k = 1; k < results->size(); ++k) {
    const std::string &name = s.m.stepSig.outputs[k].name;
    if (auto it = s.params.find(name); it != s.params.end())
      it->second = std::move((*results)[k]);
  }
  ++s.steps;
  s.weightsDirty = true;
  return loss;
} catch (...) {
  return exceptionFailure();
}

int64_t Session::stepsTaken() const { return pimpl->steps; }

} // namespace loom
