//===- loom.cpp - the loom command-line tool --------------------------===//
//
// `loom check | params | init | compile | run`: the user-facing driver.
// Every user error prints a diagnostic on stderr and exits with 1; outputs
// are written only when everything succeeded.
//
//===----------------------------------------------------------------------===//

#include "frontend/Frontend.h"
#include "ir/LoomDialect.h"
#include "reference/Interpreter.h"
#include "runtime/FileIO.h"
#include "runtime/ModelBinding.h"
#include "runtime/Npy.h"
#include "runtime/SafeTensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
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

static cl::opt<std::string> modelFile(cl::Positional, cl::Required,
                                      cl::desc("<model.loom>"),
                                      cl::sub(checkCmd), cl::sub(paramsCmd),
                                      cl::sub(initCmd), cl::sub(compileCmd),
                                      cl::sub(runCmd));
static cl::opt<std::string> modelName("model",
                                      cl::desc("Model to use when the file "
                                               "defines several"),
                                      cl::sub(checkCmd), cl::sub(paramsCmd),
                                      cl::sub(initCmd), cl::sub(compileCmd),
                                      cl::sub(runCmd));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::value_desc("file"), cl::sub(initCmd),
                                       cl::sub(compileCmd));
static cl::opt<uint64_t> seed("seed", cl::desc("Random seed"), cl::init(0),
                              cl::sub(initCmd));

enum class Emit { AST, Loom };
static cl::opt<Emit>
    emit("emit", cl::desc("What to print"), cl::init(Emit::Loom),
         cl::values(clEnumValN(Emit::AST, "ast", "the syntax tree"),
                    clEnumValN(Emit::Loom, "loom", "the loom dialect")),
         cl::sub(compileCmd));

static cl::opt<std::string> weightsFile("weights",
                                        cl::desc("Weights (.safetensors)"),
                                        cl::value_desc("file"),
                                        cl::sub(runCmd));
static cl::list<std::string> inputs("input",
                                    cl::desc("A model input: NAME=FILE.npy"),
                                    cl::value_desc("name=file"),
                                    cl::sub(runCmd));
static cl::opt<std::string>
    outputDir("output-dir", cl::desc("Directory for NAME.npy outputs"),
              cl::value_desc("dir"), cl::sub(runCmd));

static int fail(const llvm::Twine &msg) {
  llvm::WithColor::error(llvm::errs(), "loom") << msg << "\n";
  return 1;
}

namespace {
/// A parsed and checked model: its source, context, module and function.
struct Loaded {
  mlir::MLIRContext context;
  std::unique_ptr<ParsedSource> source;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
};
} // namespace

/// Parses the model file; with `generateIR`, also checks it and builds IR.
static std::unique_ptr<Loaded> load(bool generateIR = true) {
  auto buffer = llvm::MemoryBuffer::getFile(modelFile, /*IsText=*/true);
  if (!buffer) {
    fail(modelFile + ": " + buffer.getError().message());
    return nullptr;
  }
  auto loaded = std::make_unique<Loaded>();
  loaded->source = parseSource(std::move(*buffer));
  if (!loaded->source)
    return nullptr;
  if (!generateIR)
    return loaded;
  // Diagnostics from the verifier (should the checks miss something) go to
  // stderr through the context's default handler.
  loaded->module = generate(loaded->context, *loaded->source);
  if (!loaded->module)
    return nullptr;
  auto func = findModel(*loaded->module, modelName);
  if (!func) {
    fail(modelFile + ": " + func.error());
    return nullptr;
  }
  loaded->func = *func;
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

static int runInit() {
  if (outputFile.empty())
    return fail("init needs -o FILE.safetensors");
  auto m = load();
  if (!m)
    return 1;
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const ParamInfo &p : parametersOf(m->func)) {
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
  Status st = writeSafeTensors(outputFile, tensors, {});
  if (!st.ok())
    return fail(st.error());
  llvm::outs() << "wrote " << tensors.size() << " parameters to " << outputFile
               << "\n";
  return 0;
}

static int runCompile() {
  auto m = load(emit != Emit::AST);
  if (!m)
    return 1;
  std::string text;
  llvm::raw_string_ostream os(text);
  if (emit == Emit::AST)
    ast::dump(m->source->user, os);
  else
    m->module->print(os);
  if (outputFile.empty() || outputFile == "-") {
    llvm::outs() << text;
    return 0;
  }
  std::vector<ByteRange> chunk{
      {reinterpret_cast<const uint8_t *>(text.data()), text.size()}};
  Status st = writeFileAtomic(outputFile, chunk);
  return st.ok() ? 0 : fail(st.error());
}

/// Writes every output or none: on a failure, outputs already written by
/// this call are removed again.
static int
writeOutputs(const std::vector<std::pair<std::string, Tensor>> &outs);

static reference::Array toArray(const Tensor &t) {
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

static int runRun() {
  if (weightsFile.empty())
    return fail("run needs --weights FILE.safetensors");
  if (outputDir.empty())
    return fail("run needs --output-dir DIR");
  auto m = load();
  if (!m)
    return 1;
  std::map<std::string, Tensor> given;
  for (const std::string &spec : inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      return fail("--input expects NAME=FILE.npy, got '" + spec + "'");
    std::string name = spec.substr(0, eq);
    if (given.count(name))
      return fail("input '" + name + "' is given twice");
    auto t = readNpy(spec.substr(eq + 1));
    if (!t)
      return fail(t.error());
    given[name] = t.take();
  }
  auto bound = bindInputs(m->func, given);
  if (!bound)
    return fail(bound.error());
  Status values = checkInputValues(m->func, *bound);
  if (!values.ok())
    return fail(values.error());
  auto weights = readSafeTensors(weightsFile);
  if (!weights)
    return fail(weights.error());
  auto params = bindWeights(m->func, *weights);
  if (!params)
    return fail(weightsFile + ": " + params.error());

  reference::ParamMap refParams;
  for (const auto &[name, t] : *params)
    refParams[name] = toArray(t);
  std::vector<reference::Array> refInputs, refOutputs;
  for (const Tensor &t : *bound)
    refInputs.push_back(toArray(t));
  std::string error;
  if (!reference::run(m->func, refInputs, refParams, refOutputs, error))
    return fail(error);

  ModelSignature sig = signatureOf(m->func);
  std::vector<std::pair<std::string, Tensor>> outs;
  for (size_t k = 0; k < refOutputs.size(); ++k)
    outs.push_back({sig.outputs[k].name,
                    Tensor::f32(refOutputs[k].shape, refOutputs[k].f)});
  return writeOutputs(outs);
}

static int
writeOutputs(const std::vector<std::pair<std::string, Tensor>> &outs) {
  if (std::error_code ec = llvm::sys::fs::create_directories(outputDir))
    return fail(outputDir + ": " + ec.message());
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

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "loom: a compiler and JIT for recurrent neural networks\n\n"
          "  loom check   MODEL.loom\n"
          "  loom params  MODEL.loom\n"
          "  loom init    MODEL.loom -o W.safetensors [--seed S]\n"
          "  loom compile MODEL.loom --emit=ast|loom [-o OUT]\n"
          "  loom run     MODEL.loom --weights W.safetensors "
          "--input NAME=FILE.npy ... --output-dir DIR\n",
          &llvm::errs()))
    return 1;
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
  cl::PrintHelpMessage();
  return 1;
}
