//===- loom.cpp - the loom command-line tool --------------------------===//
//
// `loom check | params | init | compile | run`: the user-facing driver.
// Every user error prints a diagnostic on stderr and exits with 1; outputs
// are written only when everything succeeded.
//
//===----------------------------------------------------------------------===//

#include "codegen/Jit.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "ir/LoomDialect.h"
#include "passes/Passes.h"
#include "reference/Interpreter.h"
#include "runtime/FileIO.h"
#include "runtime/Json.h"
#include "runtime/Limits.h"
#include "runtime/ModelBinding.h"
#include "runtime/Npy.h"
#include "runtime/SafeTensors.h"
#include "runtime/TextData.h"
#include "tools/loom/AotHeader.h"
#include "tools/loom/Driver.h"
#include "tools/loom/Train.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/Pass.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <random>

using namespace loom;
namespace cl = llvm::cl;

static cl::SubCommand checkCmd("check", "Parse and verify a model");
static cl::SubCommand paramsCmd("params", "List every parameter of a model");
static cl::SubCommand initCmd("init",
                              "Write initial weights (PyTorch's defaults)");
static cl::SubCommand compileCmd("compile", "Compile a model and print IR");
static cl::SubCommand runCmd("run", "Run inference on .npy inputs");
static cl::SubCommand gradCmd("grad", "Compute the loss and its gradients");
static cl::SubCommand sampleCmd("sample",
                                "Generate text from a language model");
static cl::SubCommand trainCmd("train", "Train a model");
static cl::SubCommand evalCmd("eval",
                              "Loss and perplexity (or accuracy) on data");

static cl::opt<std::string>
    modelFile(cl::Positional, cl::Required, cl::desc("<model.loom>"),
              cl::sub(checkCmd), cl::sub(paramsCmd), cl::sub(initCmd),
              cl::sub(compileCmd), cl::sub(runCmd), cl::sub(sampleCmd),
              cl::sub(gradCmd), cl::sub(trainCmd), cl::sub(evalCmd));
static cl::opt<std::string> modelName("model",
                                      cl::desc("Model to use when the file "
                                               "defines several"),
                                      cl::sub(checkCmd), cl::sub(paramsCmd),
                                      cl::sub(initCmd), cl::sub(compileCmd),
                                      cl::sub(runCmd), cl::sub(sampleCmd),
                                      cl::sub(gradCmd), cl::sub(trainCmd),
                                      cl::sub(evalCmd));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::value_desc("file"), cl::sub(initCmd),
                                       cl::sub(compileCmd), cl::sub(gradCmd));
static cl::opt<uint64_t> seed("seed", cl::desc("Random seed"), cl::init(0),
                              cl::sub(initCmd), cl::sub(sampleCmd),
                              cl::sub(trainCmd));

enum class Emit { AST, Loom, Linalg, LLVMDialect, LLVMIR, Asm, Obj, Header };
static cl::opt<Emit> emit(
    "emit", cl::desc("The phase to stop after and print"), cl::init(Emit::Loom),
    cl::values(clEnumValN(Emit::AST, "ast", "the syntax tree"),
               clEnumValN(Emit::Loom, "loom", "the loom dialect"),
               clEnumValN(Emit::Linalg, "linalg", "linalg, tensor and scf"),
               clEnumValN(Emit::LLVMDialect, "llvm-dialect",
                          "the MLIR LLVM dialect"),
               clEnumValN(Emit::LLVMIR, "llvm-ir", "optimized LLVM IR"),
               clEnumValN(Emit::Asm, "asm", "assembly for the target"),
               clEnumValN(Emit::Obj, "obj", "an object file for the target"),
               clEnumValN(Emit::Header, "header",
                          "the C header that calls --emit=obj's object")),
    cl::sub(compileCmd));
static cl::opt<std::string> embedWeightsFile(
    "embed-weights",
    cl::desc("With --emit=obj: put these weights (.safetensors) "
             "in the object"),
    cl::value_desc("file"), cl::sub(compileCmd));
static cl::opt<bool> printAfterAll("print-ir-after-all",
                                   cl::desc("Print the IR after every pass"),
                                   cl::sub(compileCmd));
static cl::list<std::string>
    printAfter("print-ir-after", cl::desc("Print the IR after the named pass"),
               cl::value_desc("pass"), cl::sub(compileCmd));
static cl::opt<std::string>
    dumpPhasesTo("dump-phases-to",
                 cl::desc("Write the IR of every phase into this directory"),
                 cl::value_desc("dir"), cl::sub(compileCmd));
static cl::opt<bool>
    remarks("remarks",
            cl::desc("Print optimization remarks: what was hoisted, packed "
                     "and vectorized, at its source location"),
            cl::sub(compileCmd));
static cl::opt<bool> timing("timing", cl::desc("Report the time of each pass"),
                            cl::sub(compileCmd));

static cl::opt<std::string> mcpu("mcpu",
                                 cl::desc("Target CPU (default: the host's)"),
                                 cl::sub(compileCmd), cl::sub(runCmd),
                                 cl::sub(gradCmd), cl::sub(trainCmd),
                                 cl::sub(evalCmd));
static cl::opt<std::string>
    mattr("mattr", cl::desc("Target features, e.g. +avx2,-avx512f"),
          cl::sub(compileCmd), cl::sub(runCmd), cl::sub(gradCmd),
          cl::sub(trainCmd), cl::sub(evalCmd));
static cl::opt<int>
    unroll("unroll",
           cl::desc("Unroll the time loops by N steps (default: the "
                    "compiler's choice, docs/rationale.md)"),
           cl::value_desc("N"), cl::sub(compileCmd), cl::sub(runCmd),
           cl::sub(gradCmd), cl::sub(trainCmd), cl::sub(evalCmd),
           cl::sub(sampleCmd));
static cl::opt<std::string> maxMemory(
    "max-memory",
    cl::desc("Memory limit: bytes with an optional K, M, G or T suffix, 0 "
             "for none (default: LOOM_MAX_MEMORY, else the machine's "
             "memory; docs/robustness.md)"),
    cl::value_desc("SIZE"), cl::sub(initCmd), cl::sub(compileCmd),
    cl::sub(runCmd), cl::sub(gradCmd), cl::sub(sampleCmd), cl::sub(trainCmd),
    cl::sub(evalCmd));
static cl::opt<std::string> mtriple("mtriple",
                                    cl::desc("Target triple (default: host)"),
                                    cl::sub(compileCmd));

enum class WeightStorage { F32, BF16 };
static cl::opt<WeightStorage> weightStorage(
    "weight-storage",
    cl::desc("How the compiled code stores the matmul weights it packs"),
    cl::init(WeightStorage::F32),
    cl::values(clEnumValN(WeightStorage::F32, "f32", "float32 (exact)"),
               clEnumValN(WeightStorage::BF16, "bf16",
                          "bfloat16, widened to f32 in the kernels: half "
                          "the bytes, ~3 significant digits per weight")),
    cl::sub(compileCmd), cl::sub(runCmd), cl::sub(evalCmd), cl::sub(sampleCmd));

enum class Backend { JIT, Interpreter };
static cl::opt<Backend>
    backend("backend", cl::desc("How to run the model"), cl::init(Backend::JIT),
            cl::values(clEnumValN(Backend::JIT, "jit", "compiled native code"),
                       clEnumValN(Backend::Interpreter, "interpreter",
                                  "the reference interpreter (slow)")),
            cl::sub(runCmd), cl::sub(sampleCmd), cl::sub(gradCmd),
            cl::sub(trainCmd), cl::sub(evalCmd));

static cl::opt<std::string> weightsFile("weights",
                                        cl::desc("Weights (.safetensors)"),
                                        cl::value_desc("file"), cl::sub(runCmd),
                                        cl::sub(sampleCmd), cl::sub(gradCmd),
                                        cl::sub(trainCmd), cl::sub(evalCmd));
static cl::list<std::string> inputs("input",
                                    cl::desc("A model input: NAME=FILE.npy"),
                                    cl::value_desc("name=file"),
                                    cl::sub(runCmd), cl::sub(gradCmd));
static cl::opt<int64_t>
    dropoutSeed("dropout-seed",
                cl::desc("Apply dropout with this seed (default: off)"),
                cl::sub(gradCmd));
static cl::opt<std::string>
    outputDir("output-dir", cl::desc("Directory for NAME.npy outputs"),
              cl::value_desc("dir"), cl::sub(runCmd));

static cl::opt<std::string>
    vocabFile("vocab",
              cl::desc("Vocabulary: a JSON list of tokens in id order "
                       "(default: the weights file's name + .vocab.json)"),
              cl::value_desc("file"), cl::sub(sampleCmd), cl::sub(evalCmd),
              cl::sub(trainCmd));
static cl::opt<std::string> prompt("prompt", cl::desc("Text to start from"),
                                   cl::sub(sampleCmd));
static cl::opt<unsigned> numTokens("tokens",
                                   cl::desc("How many tokens to generate"),
                                   cl::init(200), cl::sub(sampleCmd));
static cl::opt<double>
    temperature("temperature",
                cl::desc("Softmax temperature (0: always the likeliest)"),
                cl::init(1.0), cl::sub(sampleCmd));
static cl::opt<unsigned> topK("top-k",
                              cl::desc("Sample among the K likeliest (0: all)"),
                              cl::init(0), cl::sub(sampleCmd));

// `loom train` / `loom eval`.
static cl::opt<std::string>
    dataFile("data", cl::desc("Training text (UTF-8) or token stream (.npy)"),
             cl::value_desc("file"), cl::sub(trainCmd), cl::sub(evalCmd));
static cl::opt<std::string>
    datasetSpec("dataset",
                cl::desc("Named arrays, one sample per row: "
                         "tokens=X.npy,lengths=L.npy,labels=Y.npy"),
                cl::value_desc("spec"), cl::sub(trainCmd), cl::sub(evalCmd));
static cl::opt<std::string>
    validFile("valid",
              cl::desc("Validation data (same kind as --data or --dataset)"),
              cl::value_desc("file"), cl::sub(trainCmd));
static cl::opt<std::string>
    checkpointFile("checkpoint",
                   cl::desc("Checkpoint to write (and --resume from)"),
                   cl::value_desc("file"), cl::sub(trainCmd));
static cl::opt<bool> resume("resume",
                            cl::desc("Continue from --checkpoint bit-exactly"),
                            cl::sub(trainCmd));
static cl::opt<int64_t>
    logEvery("log-every", cl::desc("Print 'step N loss X' every N steps"),
             cl::init(0), cl::sub(trainCmd));
static cl::opt<std::string> logJson("log-json",
                                    cl::desc("Write JSON lines per step"),
                                    cl::value_desc("file"), cl::sub(trainCmd));
static cl::opt<int64_t>
    checkpointEvery("checkpoint-every",
                    cl::desc("Also checkpoint every N steps (default: after "
                             "each validation and at the end)"),
                    cl::init(0), cl::sub(trainCmd));
static cl::opt<int64_t>
    threads("threads",
            cl::desc("Threads the compiled code runs on (default 0: every "
                     "core); results do not depend on it"),
            cl::init(0), cl::sub(trainCmd), cl::sub(evalCmd), cl::sub(runCmd),
            cl::sub(gradCmd), cl::sub(sampleCmd));
/// Training settings as flags: the names of the model file's `train` keys,
/// with dashes. Strings, validated by the trainer (which names the flag).
struct SettingFlag {
  const char *flag, *key, *desc;
};
static const SettingFlag kSettingFlags[] = {
    {"optimizer", "optimizer", "sgd, adam or adamw"},
    {"lr", "lr", "Learning rate"},
    {"momentum", "momentum", "SGD momentum"},
    {"dampening", "dampening", "SGD dampening"},
    {"weight-decay", "weight_decay",
     "L2 penalty (SGD, Adam) or decoupled decay (AdamW)"},
    {"beta1", "beta1", "Adam beta1"},
    {"beta2", "beta2", "Adam beta2"},
    {"eps", "eps", "Adam epsilon"},
    {"clip", "clip", "Clip the global gradient norm to this (0: off)"},
    {"l1", "l1", "L1 penalty: adds l1 * sum|param| to the loss"},
    {"lr-schedule", "lr_schedule", "constant, step or plateau"},
    {"lr-step", "lr_step", "step schedule: decay every N steps"},
    {"lr-gamma", "lr_gamma", "step schedule: the decay factor"},
    {"lr-decay", "lr_decay",
     "plateau schedule: divide the lr by this when validation stalls"},
    {"bptt", "bptt", "Sequence length of a training chunk"},
    {"batch-size", "batch_size", "Batch size"},
    {"eval-batch-size", "eval_batch_size", "Batch size for validation"},
    {"eval-every", "eval_every",
     "Validate every N steps (default: each epoch)"},
    {"steps", "steps", "Total optimizer steps"},
    {"epochs", "epochs", "Epochs (when --steps is not given)"},
    {"tokenizer", "tokenizer", "char or word"},
    {"valid-fraction", "valid_fraction",
     "Hold out this fraction of --data for validation"},
};
static std::vector<std::unique_ptr<cl::opt<std::string>>> settingOpts;
static cl::opt<bool> nesterov("nesterov", cl::desc("SGD Nesterov momentum"),
                              cl::sub(trainCmd));

/// Parses the model file; with `generateIR`, also checks it and builds IR.
static std::unique_ptr<Loaded> load(bool generateIR = true) {
  std::string error;
  auto buffer = readSourceFile(modelFile, error);
  if (!buffer) {
    fail(error);
    return nullptr;
  }
  auto loaded = std::make_unique<Loaded>();
  loaded->source = parseSource(std::move(buffer));
  if (!loaded->source)
    return nullptr;
  if (!generateIR)
    return loaded;
  // Diagnostics from the verifier (should the checks miss something) go to
  // stderr through the context's default handler.
  mlir::DialectRegistry registry;
  registerCodegen(registry);
  loaded->context.appendDialectRegistry(registry);
  // Any diagnostic MLIR itself emits (the verifier, should the frontend's
  // checks miss something) prints clang-style with a caret, like ours.
  mlir::SourceMgrDiagnosticHandler handler(loaded->source->sourceMgr,
                                           &loaded->context);
  loaded->module = generate(loaded->context, *loaded->source);
  if (!loaded->module)
    return nullptr;
  auto func = findModel(*loaded->module, modelName);
  if (!func) {
    fail(modelFile + ": " + func.error());
    return nullptr;
  }
  loaded->func = *func;
  // Commands that hold the parameters in memory check that they fit.
  if (!checkCmd && !paramsCmd && !compileCmd) {
    Status st = checkParameterMemory(loaded->func);
    if (!st.ok()) {
      fail(modelFile + ": " + st.error());
      return nullptr;
    }
  }
  return loaded;
}

static int runCheck() {
  auto m = load();
  if (!m)
    return 1;
  ModelSignature sig = signatureOf(m->func);
  int64_t count = 0;
  auto params = parametersOf(m->func);
  for (const ParamInfo &p : params) {
    int64_t n = 1;
    for (int64_t d : p.shape)
      n *= d;
    count += n;
  }
  llvm::outs() << modelFile << ": ok: model " << m->func.getName() << ", "
               << sig.inputs.size() << " inputs, " << sig.outputs.size()
               << " outputs, " << params.size() << " parameters (" << count
               << " values)\n";
  return 0;
}

static int runParams() {
  auto m = load();
  if (!m)
    return 1;
  int64_t total = 0;
  size_t width = 4;
  auto params = parametersOf(m->func);
  for (const ParamInfo &p : params)
    width = std::max(width, p.name.size());
  llvm::outs() << llvm::left_justify("name", width) << "  "
               << llvm::left_justify("shape", 14) << "  count\n";
  for (const ParamInfo &p : params) {
    int64_t n = 1;
    for (int64_t d : p.shape)
      n *= d;
    total += n;
    llvm::outs() << llvm::left_justify(p.name, width) << "  "
                 << llvm::left_justify(shapeString(p.shape), 14) << "  " << n
                 << "\n";
  }
  llvm::outs() << "total: " << total << " values in " << params.size()
               << " parameters\n";
  return 0;
}

std::vector<std::pair<std::string, Tensor>>
loom::initialParameters(mlir::func::FuncOp func, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const ParamInfo &p : parametersOf(func)) {
    int64_t n = 1;
    for (int64_t d : p.shape)
      n *= d;
    std::vector<float> values(n);
    if (p.init == "normal") {
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (float &v : values)
        v = dist(rng);
    } else if (p.init == "ones") {
      std::fill(values.begin(), values.end(), 1.0f);
    } else if (p.init == "zeros") {
      std::fill(values.begin(), values.end(), 0.0f);
    } else if (llvm::StringRef(p.init).starts_with("uniform:")) {
      float bound = std::stof(p.init.substr(8));
      std::uniform_real_distribution<float> dist(-bound, bound);
      for (float &v : values)
        v = dist(rng);
    }
    tensors.push_back({p.name, Tensor::f32(p.shape, std::move(values))});
  }
  return tensors;
}

static int runInit() {
  if (outputFile.empty())
    return fail("init needs -o FILE.safetensors");
  auto m = load();
  if (!m)
    return 1;
  auto tensors = initialParameters(m->func, seed);
  Status st = writeSafeTensors(outputFile, tensors, {});
  if (!st.ok())
    return fail(st.error());
  llvm::outs() << "wrote " << tensors.size() << " parameters to " << outputFile
               << "\n";
  return 0;
}

static TargetOptions targetOptions() {
  TargetOptions t;
  t.triple = mtriple;
  t.cpu = mcpu;
  t.features = mattr;
  t.threads = unsigned(std::max<int64_t>(threads, 0));
  t.unroll = unroll.getNumOccurrences() ? unsigned(unroll) : 0;
  t.bf16Weights = weightStorage == WeightStorage::BF16;
  t.objectFile = compileCmd && emit == Emit::Obj;
  return t;
}

/// Writes `text` to `path` atomically, or reports the error.
static bool writeText(const std::string &path, llvm::StringRef text) {
  std::vector<ByteRange> chunk{
      {reinterpret_cast<const uint8_t *>(text.data()), text.size()}};
  Status st = writeFileAtomic(path, chunk);
  if (!st.ok())
    fail(st.error());
  return st.ok();
}

/// The module as text, ending with a newline as mlir-opt prints it.
static std::string printed(mlir::ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  os << "\n";
  return text;
}

static int runCompile() {
  auto m = load(emit != Emit::AST || !dumpPhasesTo.empty());
  if (!m)
    return 1;
  if (!embedWeightsFile.empty() && emit != Emit::Obj)
    return fail("--embed-weights goes with --emit=obj");
  std::map<std::string, Tensor> embedded;
  if (!embedWeightsFile.empty()) {
    auto weights = readSafeTensors(embedWeightsFile);
    if (!weights)
      return fail(weights.error());
    auto bound = bindWeights(m->func, *weights);
    if (!bound)
      return fail(embedWeightsFile + ": " + bound.error());
    embedded = bound.take();
  }
  bool dumping = !dumpPhasesTo.empty();
  if (dumping) {
    if (std::error_code ec = llvm::sys::fs::create_directories(dumpPhasesTo))
      return fail(dumpPhasesTo + ": " + ec.message());
  }
  auto dumpPhase = [&](const char *file, llvm::StringRef text) {
    if (!dumping)
      return true;
    llvm::SmallString<256> path(dumpPhasesTo);
    llvm::sys::path::append(path, file);
    return writeText(std::string(path), text);
  };
  // The result of the requested phase, printed (or written) at the end.
  std::string result;
  bool binary = false;
  auto finish = [&]() {
    if (outputFile.empty() || outputFile == "-") {
      if (binary && llvm::outs().is_displayed())
        return fail("refusing to write an object file to a terminal; use -o");
      llvm::outs() << result;
      return 0;
    }
    return writeText(outputFile, result) ? 0 : 1;
  };

  // Remarks (and any other diagnostic) print clang-style with the source
  // line; without --remarks the context's default drops them.
  std::optional<mlir::SourceMgrDiagnosticHandler> remarkHandler;
  if (remarks) {
    m->context.printOpOnDiagnostic(false);
    remarkHandler.emplace(m->source->sourceMgr, &m->context);
  }
  std::string astText;
  {
    llvm::raw_string_ostream os(astText);
    ast::dump(m->source->user, os);
  }
  if (!dumpPhase("0-ast.txt", astText))
    return 1;
  if (emit == Emit::AST && !dumping) {
    result = astText;
    return finish();
  }
  mlir::ModuleOp module = *m->module;
  std::string text = printed(module);
  if (!dumpPhase("1-loom.mlir", text))
    return 1;
  if (emit == Emit::AST || emit == Emit::Loom)
    result = emit == Emit::AST ? astText : text;
  bool needMore = dumping || emit > Emit::Loom;
  if (!needMore)
    return finish();

  // Target problems are user errors: report them before compiling.
  std::string error;
  auto tm = createTargetMachine(targetOptions(), error);
  if (!tm)
    return fail(error);
  auto configure = [&](mlir::PassManager &pm) {
    if (timing)
      pm.enableTiming();
    if (printAfterAll || !printAfter.empty()) {
      m->context.disableMultithreading();
      std::vector<std::string> names(printAfter.begin(), printAfter.end());
      pm.enableIRPrinting(
          [](mlir::Pass *, mlir::Operation *) { return false; },
          [names](mlir::Pass *pass, mlir::Operation *) {
            return names.empty() ||
                   llvm::is_contained(names, pass->getArgument().str());
          },
          /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
    }
  };
  // The header reads names and shapes at the loom level.
  mlir::OwningOpRef<mlir::ModuleOp> loomLevel;
  std::string modelName = m->func.getName().str();
  if (emit == Emit::Header)
    loomLevel = module.clone();
  if (mlir::failed(runPipeline(
          module, loomToLinalgPipeline(targetOptions()).c_str(), configure)))
    return fail("lowering to linalg failed");
  CallLayout layout;
  if (emit == Emit::Header || emit == Emit::Obj) {
    if (!describeLowered(module, modelName, layout, error))
      return fail(error);
  }
  if (emit == Emit::Header) {
    auto header = generateAotHeader(
        loomLevel->lookupSymbol<mlir::func::FuncOp>(modelName), layout);
    if (!header)
      return fail(header.error());
    result = header.take();
    if (!dumping)
      return finish();
  }
  text = printed(module);
  if (!dumpPhase("2-linalg.mlir", text))
    return 1;
  if (emit == Emit::Linalg)
    result = text;
  if (!dumping && emit == Emit::Linalg)
    return finish();
  if (mlir::failed(runPipeline(module, linalgToLLVMPipeline(tm.get()).c_str(),
                               configure)))
    return fail("lowering to the LLVM dialect failed");
  text = printed(module);
  if (!dumpPhase("3-llvm-dialect.mlir", text))
    return 1;
  if (emit == Emit::LLVMDialect)
    result = text;
  if (!dumping && emit == Emit::LLVMDialect)
    return finish();
  llvm::LLVMContext llvmContext;
  auto llvmModule = translateAndOptimize(module, llvmContext, *tm,
                                         targetOptions().optLevel, error);
  if (!llvmModule)
    return fail(error);
  text.clear();
  {
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
  }
  if (!dumpPhase("4-llvm-ir.ll", text))
    return 1;
  if (emit == Emit::LLVMIR)
    result = text;
  if (dumping || emit == Emit::Asm) {
    llvm::SmallString<0> asmText;
    llvm::raw_svector_ostream os(asmText);
    if (!emitMachineCode(*llvmModule, *tm, /*assembly=*/true, os, error))
      return fail(error);
    if (!dumpPhase("5-asm.s", asmText))
      return 1;
    if (emit == Emit::Asm)
      result = std::string(asmText);
  }
  if (emit == Emit::Obj) {
    // Only the C interfaces are exported (several models link into one
    // program), and the weights go in on request.
    internalizeForAot(*llvmModule);
    if (!embedded.empty()) {
      Status st = embedWeights(*llvmModule, modelName, layout, embedded);
      if (!st.ok())
        return fail(st.error());
    }
    llvm::SmallString<0> obj;
    llvm::raw_svector_ostream os(obj);
    if (!emitMachineCode(*llvmModule, *tm, /*assembly=*/false, os, error))
      return fail(error);
    result = std::string(obj);
    binary = true;
  }
  if (timing)
    llvm::errs().flush();
  return finish();
}

/// Writes every output or none: on a failure, outputs already written by
/// this call are removed again.
static int
writeOutputs(const std::vector<std::pair<std::string, Tensor>> &outs);

/// Reads the weights file and binds the model's parameters.
static std::optional<std::map<std::string, Tensor>> loadWeights(Loaded &m) {
  auto weights = readSafeTensors(weightsFile);
  if (!weights) {
    fail(weights.error());
    return std::nullopt;
  }
  auto params = bindWeights(m.func, *weights);
  if (!params) {
    fail(weightsFile + ": " + params.error());
    return std::nullopt;
  }
  return params.take();
}

/// Reads every `--input NAME=FILE.npy` and binds them to `func`'s inputs,
/// checking names, dtypes, shapes and values.
static std::optional<std::vector<Tensor>>
readInputs(mlir::func::FuncOp func,
           const std::map<std::string, Tensor> &extra = {}) {
  std::map<std::string, Tensor> given = extra;
  for (const std::string &spec : inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      fail("--input expects NAME=FILE.npy, got '" + spec + "'");
      return std::nullopt;
    }
    std::string name = spec.substr(0, eq);
    if (given.count(name)) {
      fail("input '" + name + "' is given twice");
      return std::nullopt;
    }
    auto t = readNpy(spec.substr(eq + 1));
    if (!t) {
      fail(t.error());
      return std::nullopt;
    }
    given[name] = t.take();
  }
  auto bound = bindInputs(func, given);
  if (!bound) {
    fail(bound.error());
    return std::nullopt;
  }
  Status values = checkInputValues(func, *bound);
  if (!values.ok()) {
    fail(values.error());
    return std::nullopt;
  }
  return bound.take();
}

static int runRun() {
  if (weightsFile.empty())
    return fail("run needs --weights FILE.safetensors");
  if (outputDir.empty())
    return fail("run needs --output-dir DIR");
  auto m = load();
  if (!m)
    return 1;
  auto bound = readInputs(m->func);
  if (!bound)
    return 1;
  auto params = loadWeights(*m);
  if (!params)
    return 1;
  Runner runner(backend == Backend::JIT, targetOptions());
  std::string error;
  std::vector<Tensor> results;
  if (!runner.init(*m, std::move(*params), error) ||
      !runner.run(*bound, results, error))
    return fail(error);
  ModelSignature sig = signatureOf(m->func);
  std::vector<std::pair<std::string, Tensor>> outs;
  for (size_t k = 0; k < results.size(); ++k)
    outs.push_back({sig.outputs[k].name, std::move(results[k])});
  return writeOutputs(outs);
}

static int
writeOutputs(const std::vector<std::pair<std::string, Tensor>> &outs) {
  if (std::error_code ec = llvm::sys::fs::create_directories(outputDir))
    return fail(outputDir + ": " + ec.message());
  if (!llvm::sys::fs::is_directory(outputDir))
    return fail(outputDir + ": not a directory");
  std::vector<std::string> written;
  for (const auto &[name, t] : outs) {
    llvm::SmallString<256> path(outputDir);
    llvm::sys::path::append(path, name + ".npy");
    Status st = writeNpy(std::string(path), t);
    if (!st.ok()) {
      for (const std::string &w : written)
        llvm::sys::fs::remove(w);
      return fail(st.error());
    }
    written.push_back(std::string(path));
  }
  return 0;
}

/// `loom grad`: the loss on the given inputs and d loss / d param for every
/// parameter, from the gradient function loom-differentiate derives.
static int runGrad() {
  if (weightsFile.empty())
    return fail("grad needs --weights FILE.safetensors");
  if (outputFile.empty())
    return fail("grad needs -o GRADS.safetensors");
  auto m = load();
  if (!m)
    return 1;
  std::string base = m->func.getName().str();
  if (!m->module->lookupSymbol<mlir::func::FuncOp>(base + "_loss"))
    return fail("model '" + base +
                "' has no loss; add a line like `loss cross_entropy(logits, "
                "targets)`");
  if (mlir::failed(runPipeline(*m->module, kGradientPipeline)))
    return fail("differentiating the model failed");
  auto gradFn = m->module->lookupSymbol<mlir::func::FuncOp>(base + "_grad");
  if (!gradFn)
    return fail("differentiating the model produced no gradient function");
  // The dropout key is not a user input: off, or seeded by --dropout-seed.
  std::map<std::string, Tensor> extra;
  for (unsigned i = 0; i < gradFn.getNumArguments(); ++i)
    if (auto n = gradFn.getArgAttrOfType<mlir::StringAttr>(i, kNameAttr);
        n && n.getValue() == kDropoutKeyName)
      extra[kDropoutKeyName] = Tensor::i64(
          {2},
          {dropoutSeed.getNumOccurrences() ? int64_t(dropoutSeed) : -1, 0});
  auto bound = readInputs(gradFn, extra);
  if (!bound)
    return 1;
  auto weights = readSafeTensors(weightsFile);
  if (!weights)
    return fail(weights.error());
  auto params = bindWeights(gradFn, *weights);
  if (!params)
    return fail(weightsFile + ": " + params.error());
  Runner runner(backend == Backend::JIT, targetOptions());
  std::string error;
  std::vector<Tensor> results;
  if (!runner.init(*m->module, gradFn, params.take(), error) ||
      !runner.run(*bound, results, error))
    return fail(error);
  ModelSignature sig = signatureOf(gradFn);
  std::vector<std::pair<std::string, Tensor>> grads;
  for (size_t k = 1; k < results.size(); ++k)
    if (!gradFn.getResultAttr(k, kCarryAttr))
      grads.push_back({sig.outputs[k].name, std::move(results[k])});
  Status st = writeSafeTensors(outputFile, grads, {});
  if (!st.ok())
    return fail(st.error());
  llvm::outs() << llvm::format("loss: %.9g\n", results[0].f32Data()[0]);
  return 0;
}

/// The UTF-8 characters of `text`, one string each.
static std::vector<std::string> utf8Chars(llvm::StringRef text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = text[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    n = std::min(n, text.size() - i);
    out.push_back(text.substr(i, n).str());
    i += n;
  }
  return out;
}

/// `loom sample`: feeds the prompt, then one sampled token at a time. The
/// model's i64 input takes the tokens ([T, B] with B = 1), its first output
/// is the logits, and its f32 inputs are recurrent states fed back from the
/// outputs that follow the logits, in order.
static int runSample() {
  if (weightsFile.empty())
    return fail("sample needs --weights FILE.safetensors");
  if (temperature < 0)
    return fail("--temperature must not be negative");
  std::string vocabPath = vocabFile;
  if (vocabPath.empty()) {
    llvm::SmallString<256> p(weightsFile);
    llvm::sys::path::replace_extension(p, "vocab.json");
    vocabPath = std::string(p);
  }
  auto loadedVocab = Vocabulary::load(vocabPath);
  if (!loadedVocab)
    return fail(loadedVocab.error() + " (pass the vocabulary with --vocab)");
  const std::vector<std::string> &vocab = loadedVocab->tokens;
  const std::map<std::string, int64_t> &ids = loadedVocab->index;
  bool words = loadedVocab->kind == "word";
  auto m = load();
  if (!m)
    return 1;
  ModelSignature sig = signatureOf(m->func);
  // The token input: the one called `tokens`, else the only i64 input.
  // Other i64 inputs of the same shape (the training targets of an LM whose
  // loss is in the same model) are fed zeros: the logits do not use them.
  int tokensInput = -1;
  std::vector<int> stateInputs, otherIds;
  for (size_t i = 0; i < sig.inputs.size(); ++i)
    if (sig.inputs[i].isInt && sig.inputs[i].name == "tokens")
      tokensInput = i;
  for (size_t i = 0; i < sig.inputs.size(); ++i) {
    if (!sig.inputs[i].isInt) {
      stateInputs.push_back(i);
      continue;
    }
    if (tokensInput < 0)
      tokensInput = i;
    else if (int(i) != tokensInput)
      otherIds.push_back(i);
  }
  if (tokensInput < 0 || sig.inputs[tokensInput].dims.size() != 2)
    return fail("sample needs a model with an i64[T, B] token input");
  for (int i : otherIds)
    if (sig.inputs[i].dims != sig.inputs[tokensInput].dims)
      return fail("sample needs a model whose only i64 input besides "
                  "the tokens are targets of the same shape; '" +
                  sig.inputs[i].name + "' is " + sig.inputs[i].describe());
  if (sig.outputs.size() < 1 + stateInputs.size())
    return fail("sample needs the logits as the first output, followed by "
                "one final state per state input");
  auto params = loadWeights(*m);
  if (!params)
    return 1;

  // Tokenize the prompt.
  std::vector<std::string> pieces;
  if (words) {
    llvm::SmallVector<llvm::StringRef> split;
    llvm::StringRef(prompt).split(split, ' ', -1, false);
    for (llvm::StringRef w : split)
      pieces.push_back(w.str());
  } else {
    pieces = utf8Chars(prompt);
  }
  if (pieces.empty())
    return fail("--prompt must not be empty");
  std::vector<int64_t> tokens;
  for (const std::string &p : pieces) {
    auto it = ids.find(p);
    if (it == ids.end())
      return fail("the prompt has '" + p +
                  "', which is not in the vocabulary " + vocabPath);
    tokens.push_back(it->second);
  }

  Runner runner(backend == Backend::JIT, targetOptions());
  std::string error;
  if (!runner.init(*m, std::move(*params), error))
    return fail(error);
  // Initial states are zeros of the declared shape with B = 1.
  std::vector<Tensor> states;
  for (int i : stateInputs) {
    std::vector<int64_t> shape;
    for (const std::string &d : sig.inputs[i].dims) {
      if (d == sig.inputs[tokensInput].dims[1])
        shape.push_back(1);
      else if (!d.empty() && std::isdigit((unsigned char)d[0]))
        shape.push_back(std::stoll(d));
      else
        return fail("state input '" + sig.inputs[i].name + "' has size '" + d +
                    "', which sample cannot choose");
    }
    states.push_back(Tensor::zeros(DType::F32, shape));
  }
  std::mt19937_64 rng(seed);
  std::vector<int64_t> feed = tokens;
  std::string text = prompt;
  for (unsigned n = 0; n <= numTokens; ++n) {
    std::vector<Tensor> in(sig.inputs.size());
    int64_t T = feed.size();
    in[tokensInput] = Tensor::i64({T, 1}, feed);
    for (int i : otherIds)
      in[i] = Tensor::i64({T, 1}, std::vector<int64_t>(T, 0));
    for (size_t k = 0; k < stateInputs.size(); ++k)
      in[stateInputs[k]] = states[k];
    std::vector<Tensor> out;
    if (!runner.run(in, out, error))
      return fail(error);
    const Tensor &logits = out[0];
    // A model may have more classes than its corpus had tokens (loom train
    // sizes the vocabulary by the text); only the vocabulary's are drawn.
    if (logits.shape.size() != 3 || logits.shape[0] != T ||
        logits.shape[2] < (int64_t)vocab.size())
      return fail("the first output must be logits [T, B, C] with C at least "
                  "the vocabulary's " +
                  std::to_string(vocab.size()) + " tokens, found " +
                  logits.shapeString());
    if (n == numTokens)
      break;
    for (size_t k = 0; k < stateInputs.size(); ++k)
      states[k] = out[1 + k];
    const float *last = logits.f32Data() + (T - 1) * logits.shape[2];
    std::vector<std::pair<double, int64_t>> scored;
    for (size_t v = 0; v < vocab.size(); ++v)
      scored.push_back({last[v], (int64_t)v});
    std::sort(scored.begin(), scored.end(),
              [](auto &a, auto &b) { return a.first > b.first; });
    if (topK > 0 && topK < scored.size())
      scored.resize(topK);
    int64_t next = scored[0].second;
    if (temperature > 0) {
      std::vector<double> weights;
      for (auto &[logit, id] : scored)
        weights.push_back(std::exp((logit - scored[0].first) / temperature));
      std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
      next = scored[pick(rng)].second;
    }
    const std::string &piece = vocab[next];
    if (words)
      text += piece == "<eos>" ? "\n" : " " + piece;
    else
      text += piece;
    // With recurrent states only the new token is fed; without, the whole
    // text is run again.
    if (stateInputs.empty())
      feed.push_back(next);
    else
      feed = {next};
  }
  llvm::outs() << text << "\n";
  return 0;
}

/// `loom train` and `loom eval`: flags into a TrainRequest (Train.cpp).
static int runTrainOrEval() {
  auto m = load();
  if (!m)
    return 1;
  TrainRequest req;
  req.model = m.get();
  req.useJit = backend == Backend::JIT;
  req.target = targetOptions();
  for (size_t k = 0; k < settingOpts.size(); ++k)
    if (settingOpts[k]->getNumOccurrences())
      req.flags[kSettingFlags[k].key] = *settingOpts[k];
  if (nesterov.getNumOccurrences())
    req.flags["nesterov"] = nesterov ? "true" : "false";
  req.data = dataFile;
  req.dataset = datasetSpec;
  req.valid = validFile;
  req.vocab = vocabFile;
  req.checkpoint = checkpointFile;
  req.weights = weightsFile;
  req.logJson = logJson;
  req.resume = resume;
  req.logEvery = logEvery;
  req.seed = seed;
  req.checkpointEvery = checkpointEvery;
  if (logEvery < 0 || checkpointEvery < 0)
    return fail("--log-every and --checkpoint-every must not be negative");
  return trainCmd ? runTrain(req) : runEval(req);
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  for (const SettingFlag &f : kSettingFlags)
    settingOpts.push_back(std::make_unique<cl::opt<std::string>>(
        llvm::StringRef(f.flag), cl::desc(f.desc), cl::sub(trainCmd),
        cl::sub(evalCmd)));
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "loom: a compiler and JIT for recurrent neural networks\n\n"
          "  loom check   MODEL.loom\n"
          "  loom params  MODEL.loom\n"
          "  loom init    MODEL.loom -o W.safetensors [--seed S]\n"
          "  loom compile MODEL.loom --emit=ast|loom|linalg|llvm-dialect|"
          "llvm-ir|asm|obj [-o OUT]\n"
          "  loom run     MODEL.loom --weights W.safetensors "
          "--input NAME=FILE.npy ... --output-dir DIR\n"
          "  loom grad    MODEL.loom --weights W.safetensors "
          "--input NAME=FILE.npy ... -o GRADS.safetensors\n"
          "  loom sample  MODEL.loom --weights W.safetensors --prompt TEXT "
          "[--tokens N] [--temperature T] [--top-k K] [--seed S]\n"
          "  loom train   MODEL.loom --data CORPUS.txt|TOKENS.npy "
          "[--valid FILE | --valid-fraction F] --checkpoint OUT.safetensors "
          "[--steps N|--epochs N] [--resume] [--log-every N] [--log-json F] "
          "[optimizer and schedule flags]\n"
          "  loom eval    MODEL.loom --weights W.safetensors --data TEXT\n",
          &llvm::errs()))
    return 1;
  if (threads < 0 || threads > 1024)
    return fail("--threads must be between 0 (every core) and 1024, not " +
                std::to_string(threads));
  if (maxMemory.getNumOccurrences()) {
    auto limit = parseByteSize(maxMemory);
    if (!limit)
      return fail("--max-memory: " + limit.error());
    setMemoryLimit(*limit, "--max-memory");
  }
  if (unroll.getNumOccurrences() && (unroll < 1 || unroll > kMaxUnroll))
    return fail("--unroll must be between 1 and " + llvm::Twine(kMaxUnroll) +
                ", got " + llvm::Twine(int(unroll)));
  if (weightStorage == WeightStorage::BF16 && backend == Backend::Interpreter)
    return fail("--weight-storage=bf16 is a property of compiled code: it "
                "needs --backend=jit");
  if (checkCmd)
    return runCheck();
  if (paramsCmd)
    return runParams();
  if (initCmd)
    return runInit();
  if (compileCmd)
    return runCompile();
  if (runCmd)
    return runRun();
  if (sampleCmd)
    return runSample();
  if (gradCmd)
    return runGrad();
  if (trainCmd || evalCmd)
    return runTrainOrEval();
  cl::PrintHelpMessage();
  return 1;
}
