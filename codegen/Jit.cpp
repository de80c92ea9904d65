//===- Jit.cpp - JIT-compiled model functions -------------------------===//
#include "codegen/Jit.h"
#include "codegen/Passes.h"
#include "runtime/Memory.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace loom;

std::unique_ptr<JitModel> JitModel::compile(mlir::ModuleOp module,
                                            llvm::StringRef funcName,
                                            const TargetOptions &target,
                                            std::string &error) {
  mlir::OwningOpRef<mlir::ModuleOp> clone = module.clone();
  auto func = clone->lookupSymbol<mlir::func::FuncOp>(funcName);
  if (!func) {
    error = "no function '" + funcName.str() + "'";
    return nullptr;
  }
  // Other models of the file are not needed.
  for (auto f : llvm::make_early_inc_range(clone->getOps<mlir::func::FuncOp>()))
    if (f != func)
      f.erase();
  std::string packName = funcName.str() + "__pack";
  auto model = std::unique_ptr<JitModel>(new JitModel());
  model->entry = "_mlir_ciface_" + funcName.str();
  if (mlir::failed(runPipeline(*clone, loomToLinalgPipeline(target).c_str()))) {
    error = "lowering to linalg failed";
    return nullptr;
  }
  func = clone->lookupSymbol<mlir::func::FuncOp>(funcName);
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    if (auto p = func.getArgAttrOfType<mlir::StringAttr>(i, kParamArgAttr))
      model->params.push_back(p.str());
    model->ranks.push_back(
        mlir::cast<mlir::ShapedType>(func.getArgument(i).getType()).getRank());
  }
  for (mlir::Type t : func.getResultTypes())
    model->ranks.push_back(mlir::cast<mlir::ShapedType>(t).getRank());
  if (auto pack = clone->lookupSymbol<mlir::func::FuncOp>(packName)) {
    model->packEntry = "_mlir_ciface_" + packName;
    for (unsigned i = 0; i < pack.getNumArguments(); ++i) {
      auto name = pack.getArgAttrOfType<mlir::StringAttr>(i, kParamArgAttr);
      auto it = llvm::find(model->params, name ? name.str() : "");
      if (it == model->params.end()) {
        error = "internal: the pack function takes an unknown parameter";
        return nullptr;
      }
      model->packParams.push_back(it - model->params.begin());
      model->packRanks.push_back(
          mlir::cast<mlir::ShapedType>(pack.getArgument(i).getType())
              .getRank());
    }
    for (mlir::Type t : pack.getResultTypes()) {
      auto type = mlir::cast<mlir::RankedTensorType>(t);
      model->packRanks.push_back(type.getRank());
      std::vector<int64_t> shape(type.getShape().begin(),
                                 type.getShape().end());
      // In floats, whatever the element type (bf16 packs two per float).
      int64_t bytes =
          type.getNumElements() * int64_t(type.getElementTypeBitWidth() / 8);
      model->packedData.emplace_back((bytes + 3) / 4);
      model->packed.push_back({nullptr, shape});
    }
    for (size_t k = 0; k < model->packed.size(); ++k)
      model->packed[k].data = model->packedData[k].data();
  }
  auto tm = createTargetMachine(target, error);
  if (!tm)
    return nullptr;
  if (mlir::failed(
          runPipeline(*clone, withoutPasses(linalgToLLVMPipeline(tm.get()),
                                            target.disabledPasses)
                                  .c_str()))) {
    error = "lowering to the LLVM dialect failed";
    return nullptr;
  }
  unsigned optLevel = target.optLevel;
  llvm::TargetMachine *tmPtr = tm.get();
  std::string translateError;
  auto transformer = [&](llvm::Module *m) -> llvm::Error {
    for (llvm::Function &f : *m) {
      if (f.isDeclaration())
        continue;
      f.addFnAttr("target-cpu", tmPtr->getTargetCPU());
      if (!tmPtr->getTargetFeatureString().empty())
        f.addFnAttr("target-features", tmPtr->getTargetFeatureString());
    }
    return mlir::makeOptimizingTransformer(optLevel, 0, tmPtr)(m);
  };
  mlir::ExecutionEngineOptions options;
  options.transformer = transformer;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  options.enableGDBNotificationListener = false;
  options.enablePerfNotificationListener = false;
  const char *perfMap = std::getenv("LOOM_PERF_MAP");
  bool writePerfMap = perfMap && *perfMap && std::string(perfMap) != "0";
  options.enableObjectDump = writePerfMap;
  auto engine = mlir::ExecutionEngine::create(*clone, options, std::move(tm));
  if (!engine) {
    error = "JIT compilation failed: " + llvm::toString(engine.takeError());
    return nullptr;
  }
  model->engine = std::move(*engine);
  // The run-time support compiled code calls.
  model->engine->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap symbols;
    symbols[interner(kParallelForSymbol)] = {
        llvm::orc::ExecutorAddr::fromPtr(&loom_parallel_for),
        llvm::JITSymbolFlags::Exported};
    symbols[interner("_mlir_memref_to_llvm_alloc")] = {
        llvm::orc::ExecutorAddr::fromPtr(&_mlir_memref_to_llvm_alloc),
        llvm::JITSymbolFlags::Exported};
    symbols[interner("_mlir_memref_to_llvm_free")] = {
        llvm::orc::ExecutorAddr::fromPtr(&_mlir_memref_to_llvm_free),
        llvm::JITSymbolFlags::Exported};
    return symbols;
  });
  model->setThreads(target.threads);
  // Generate the machine code now (ORC materializes on the first lookup):
  // a compiled model is ready to run, and compile latency is measured
  // where it is spent, not on the first call.
  for (const std::string *fn : {&model->entry, &model->packEntry}) {
    if (fn->empty())
      continue;
    auto addr = model->engine->lookupPacked(*fn);
    if (!addr) {
      error = "JIT compilation failed: " + llvm::toString(addr.takeError());
      return nullptr;
    }
  }
  if (writePerfMap)
    model->writePerfMap();
  return model;
}

/// LOOM_PERF_MAP=1: appends every compiled function's address range to
/// /tmp/perf-<pid>.map, the file perf reads to name JIT code (the LLVM
/// here has no perf JIT listener). The functions' offsets come from the
/// object ORC linked, placed by one exported symbol's address (the object
/// has one text section).
void JitModel::writePerfMap() {
  std::string entryName = entry.substr(std::strlen("_mlir_ciface_"));
  auto entryAddr = engine->lookup(entryName);
  if (!entryAddr) {
    llvm::consumeError(entryAddr.takeError());
    return;
  }
  llvm::SmallString<64> objPath;
  if (llvm::sys::fs::createTemporaryFile("loom-jit", "o", objPath))
    return;
  engine->dumpToObjectFile(objPath);
  auto buffer = llvm::MemoryBuffer::getFile(objPath);
  llvm::sys::fs::remove(objPath);
  if (!buffer)
    return;
  auto obj = llvm::object::ObjectFile::createObjectFile(**buffer);
  if (!obj) {
    llvm::consumeError(obj.takeError());
    return;
  }
  std::vector<std::pair<uint64_t, std::string>> funcs; // offset, name
  uint64_t entryOffset = 0;
  bool found = false;
  for (const llvm::object::SymbolRef &sym : (*obj)->symbols()) {
    auto type = sym.getType();
    auto name = sym.getName();
    auto addr = sym.getAddress();
    if (!type || !name || !addr ||
        *type != llvm::object::SymbolRef::ST_Function) {
      if (!type)
        llvm::consumeError(type.takeError());
      if (!name)
        llvm::consumeError(name.takeError());
      if (!addr)
        llvm::consumeError(addr.takeError());
      continue;
    }
    funcs.push_back({*addr, name->str()});
    if (*name == entryName) {
      entryOffset = *addr;
      found = true;
    }
  }
  if (!found)
    return;
  std::sort(funcs.begin(), funcs.end());
  std::error_code ec;
  llvm::raw_fd_ostream os(
      "/tmp/perf-" + std::to_string(llvm::sys::Process::getProcessId()) +
          ".map",
      ec, llvm::sys::fs::OF_Append);
  if (ec)
    return;
  uint64_t base = uint64_t(*entryAddr) - entryOffset;
  for (size_t k = 0; k < funcs.size(); ++k) {
    uint64_t size =
        k + 1 < funcs.size() ? funcs[k + 1].first - funcs[k].first : 4096;
    os << llvm::format_hex_no_prefix(base + funcs[k].first, 1) << " "
       << llvm::format_hex_no_prefix(size, 1) << " " << funcs[k].second << "\n";
  }
}

void JitModel::setThreads(unsigned n) {
  if (n == 0)
    n = ThreadPool::hardwareThreads();
  if (n == threads())
    return;
  pool = n > 1 ? std::make_unique<ThreadPool>(n) : nullptr;
}

bool JitModel::run(const std::vector<BufferRef> &inputs,
                   const std::vector<BufferRef> &weights,
                   const std::vector<BufferRef> &outputs, std::string &error) {
  return setWeights(weights, error) && runPrepacked(inputs, outputs, error);
}

bool JitModel::setWeights(const std::vector<BufferRef> &weights,
                          std::string &error) {
  if (weights.size() != params.size()) {
    error = "expected " + std::to_string(params.size()) + " weights, got " +
            std::to_string(weights.size());
    return false;
  }
  currentWeights = weights;
  if (packEntry.empty())
    return true;
  std::vector<const BufferRef *> all;
  for (unsigned k : packParams)
    all.push_back(&weights[k]);
  for (const BufferRef &b : packed)
    all.push_back(&b);
  return invoke(packEntry, packRanks, all, error);
}

bool JitModel::runPrepacked(const std::vector<BufferRef> &inputs,
                            const std::vector<BufferRef> &outputs,
                            std::string &error) {
  std::vector<const BufferRef *> all;
  for (const BufferRef &b : inputs)
    all.push_back(&b);
  for (const BufferRef &b : currentWeights)
    all.push_back(&b);
  for (const BufferRef &b : packed)
    all.push_back(&b);
  for (const BufferRef &b : outputs)
    all.push_back(&b);
  return invoke(entry, ranks, all, error);
}

bool JitModel::invoke(const std::string &fn,
                      const std::vector<unsigned> &fnRanks,
                      const std::vector<const BufferRef *> &all,
                      std::string &error) {
  if (all.size() != fnRanks.size()) {
    error = "expected " + std::to_string(fnRanks.size()) + " buffers, got " +
            std::to_string(all.size());
    return false;
  }
  // One memref descriptor per argument: {allocated, aligned, offset,
  // sizes[rank], strides[rank]}, dense row-major.
  std::vector<std::vector<int64_t>> descriptors(all.size());
  std::vector<void *> descPtrs(all.size());
  std::vector<void *> args(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const BufferRef &b = *all[i];
    if (b.shape.size() != fnRanks[i]) {
      error = "buffer " + std::to_string(i) + " has rank " +
              std::to_string(b.shape.size()) + ", expected " +
              std::to_string(fnRanks[i]);
      return false;
    }
    std::vector<int64_t> &d = descriptors[i];
    d.resize(3 + 2 * fnRanks[i]);
    d[0] = d[1] = reinterpret_cast<int64_t>(b.data);
    d[2] = 0;
    int64_t stride = 1;
    int64_t rank = fnRanks[i];
    for (int64_t k = rank - 1; k >= 0; --k) {
      d[3 + k] = b.shape[k];
      d[3 + rank + k] = stride;
      stride *= b.shape[k];
    }
    descPtrs[i] = d.data();
    args[i] = &descPtrs[i];
  }
  ThreadPoolScope scope(pool.get());
  if (llvm::Error e = engine->invokePacked(fn, args)) {
    error = "cannot call the compiled model: " + llvm::toString(std::move(e));
    return false;
  }
  return true;
}
