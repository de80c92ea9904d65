//===- Pipeline.cpp - from the loom dialect to native code ------------===//
#include "codegen/Pipeline.h"
#include "codegen/Passes.h"
#include "ir/LoomDialect.h"
#include "passes/Passes.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"

#include <mutex>

using namespace loom;

void loom::registerCodegen(mlir::DialectRegistry &registry) {
  static std::once_flag once;
  std::call_once(once, [] {
    mlir::registerAllPasses();
    loom::registerCodegenPasses();
    loom::registerLoomPasses();
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
    llvm::InitializeAllAsmParsers();
  });
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<LoomDialect>();
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
}

std::unique_ptr<llvm::TargetMachine>
loom::createTargetMachine(const TargetOptions &options, std::string &error) {
  llvm::Triple triple(options.triple.empty() ? llvm::sys::getProcessTriple()
                                             : options.triple);
  llvm::orc::JITTargetMachineBuilder jtmb(triple);
  bool host =
      options.triple.empty() || triple.str() == llvm::sys::getProcessTriple();
  if (options.cpu.empty() && host) {
    auto detected = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!detected) {
      error = llvm::toString(detected.takeError());
      return nullptr;
    }
    jtmb = std::move(*detected);
  } else if (!options.cpu.empty()) {
    jtmb.setCPU(options.cpu);
  }
  if (!options.features.empty()) {
    llvm::SmallVector<llvm::StringRef> feats;
    llvm::StringRef(options.features).split(feats, ',', -1, false);
    std::vector<std::string> list;
    for (llvm::StringRef f : feats) {
      f = f.trim();
      if (f.empty())
        continue;
      if (!f.starts_with("+") && !f.starts_with("-")) {
        error = "target feature '" + f.str() + "' must start with + or -";
        return nullptr;
      }
      list.push_back(f.str());
    }
    jtmb.addFeatures(list);
  }
  std::string lookupError;
  if (!llvm::TargetRegistry::lookupTarget(jtmb.getTargetTriple(),
                                          lookupError)) {
    error = "unknown target triple '" + triple.str() + "': " + lookupError;
    return nullptr;
  }
  if (!options.cpu.empty()) {
    auto *target =
        llvm::TargetRegistry::lookupTarget(jtmb.getTargetTriple(), lookupError);
    auto *sti =
        target->createMCSubtargetInfo(jtmb.getTargetTriple(), options.cpu, "");
    bool known = sti && sti->isCPUStringValid(options.cpu);
    delete sti;
    if (!known) {
      error = "unknown CPU '" + options.cpu + "' for " + triple.str();
      return nullptr;
    }
  }
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  if (options.objectFile) {
    // What a host program links: position-independent (PIE executables,
    // shared libraries) with the small code model, unlike the JIT's.
    jtmb.setRelocationModel(llvm::Reloc::PIC_);
    jtmb.setCodeModel(llvm::CodeModel::Small);
  }
  auto tm = jtmb.createTargetMachine();
  if (!tm) {
    error = llvm::toString(tm.takeError());
    return nullptr;
  }
  return std::move(*tm);
}

std::string loom::withoutPasses(llvm::StringRef pipeline,
                                llvm::ArrayRef<std::string> names) {
  if (names.empty())
    return pipeline.str();
  // Split at the commas outside of () and {}; recurse into "name(...)".
  std::string out;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= pipeline.size(); ++i) {
    char c = i < pipeline.size() ? pipeline[i] : ',';
    if (c == '(' || c == '{')
      ++depth;
    else if (c == ')' || c == '}')
      --depth;
    if (c != ',' || depth != 0)
      continue;
    llvm::StringRef item = pipeline.slice(start, i).trim();
    start = i + 1;
    llvm::StringRef name =
        item.take_until([](char ch) { return ch == '{' || ch == '('; });
    if (item.empty() || llvm::is_contained(names, name.str()))
      continue;
    std::string kept = item.str();
    if (item.ends_with(")") && item.size() > name.size() &&
        item[name.size()] == '(') {
      std::string inner =
          withoutPasses(item.drop_front(name.size() + 1).drop_back(), names);
      kept = name.str() + "(" + inner + ")";
    }
    out += (out.empty() ? "" : ",") + kept;
  }
  return out;
}

std::string loom::loomToLinalgPipeline(const TargetOptions &target) {
  std::string text =
      "loom-fuse-gate-matmuls,loom-hoist-input-projection,"
      "loom-params-to-args,"
      "func.func(convert-loom-to-linalg,loom-unroll-time{factor=" +
      std::to_string(target.unroll) +
      "},canonicalize,cse,"
      "linalg-fuse-elementwise-ops,canonicalize,cse,"
      "loom-fuse-matmul-epilogues,loom-collapse-contraction-dims,"
      "loom-pack-weights" +
      std::string(target.bf16Weights ? "{bf16=true}" : "") +
      "),loom-split-weight-packing";
  return withoutPasses(text, target.disabledPasses);
}

KernelShape loom::kernelShapeFor(const llvm::TargetMachine *tm) {
  if (!tm)
    return {};
  // The CPU's features with --mattr applied.
  const llvm::MCSubtargetInfo *sti = tm->getMCSubtargetInfo();
  auto has = [&](llvm::StringRef f) {
    return sti && sti->checkFeatures(("+" + f).str());
  };
  const llvm::Triple &triple = tm->getTargetTriple();
  if (triple.isX86()) {
    if (has("avx512f"))
      return {16, 4, 6}; // 24 of 32 zmm registers accumulate
    if (has("avx"))
      return {8, 2, 6}; // 12 of 16 ymm registers (the classic 6x16 kernel)
    return {4, 2, 6};   // SSE: 12 of 16 xmm registers
  }
  if (triple.isAArch64())
    return {4, 4, 6}; // NEON: 24 of 32 q registers
  return {4, 2, 4};
}

std::string loom::linalgToLLVMPipeline(const llvm::TargetMachine *tm) {
  KernelShape k = kernelShapeFor(tm);
  std::string vectorize = "loom-vectorize-contractions";
  if (k.vectorWidth != 16 || k.vectors != 4 || k.rows != 6)
    vectorize += "{vector-width=" + std::to_string(k.vectorWidth) +
                 " vectors=" + std::to_string(k.vectors) +
                 " rows=" + std::to_string(k.rows) + "}";
  return "loom-outputs-to-args,"
         "one-shot-bufferize{bufferize-function-boundaries "
         "function-boundary-type-conversion=identity-layout-map "
         "allow-return-allocs-from-loops},"
         "buffer-deallocation-pipeline,convert-bufferization-to-memref,"
         "loom-outline-contractions,"
         "func.func(" +
         vectorize +
         ",loom-copies-to-linalg,"
         "loom-linalg-to-loops,loom-expand-math,canonicalize,"
         "loop-invariant-code-motion,loom-expand-shape-to-cast),"
         "loom-outline-parallel-loops,expand-strided-metadata,lower-affine,"
         "convert-scf-to-cf,"
         "convert-vector-to-llvm,finalize-memref-to-llvm{use-generic-functions="
         "1},"
         "convert-math-to-llvm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,convert-cf-to-llvm,"
         "convert-func-to-llvm{use-bare-ptr-memref-call-conv=0},"
         "loom-parallel-to-runtime,"
         "convert-ub-to-llvm,reconcile-unrealized-casts";
}

mlir::LogicalResult
loom::runPipeline(mlir::ModuleOp module, const char *pipeline,
                  const std::function<void(mlir::PassManager &)> &configure) {
  mlir::PassManager pm(module->getName());
  std::string err;
  llvm::raw_string_ostream os(err);
  if (mlir::failed(mlir::parsePassPipeline(pipeline, pm, os))) {
    module.emitError("internal error: bad pipeline: ") << err;
    return mlir::failure();
  }
  if (configure)
    configure(pm);
  return pm.run(module);
}

std::unique_ptr<llvm::Module>
loom::translateAndOptimize(mlir::ModuleOp module, llvm::LLVMContext &ctx,
                           llvm::TargetMachine &tm, unsigned optLevel,
                           std::string &error) {
  auto llvmModule = mlir::translateModuleToLLVMIR(module, ctx);
  if (!llvmModule) {
    error = "could not translate to LLVM IR";
    return nullptr;
  }
  llvmModule->setDataLayout(tm.createDataLayout());
  llvmModule->setTargetTriple(tm.getTargetTriple());
  // Tune every function for the target CPU, as clang does with -march.
  for (llvm::Function &f : *llvmModule) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", tm.getTargetCPU());
    if (!tm.getTargetFeatureString().empty())
      f.addFnAttr("target-features", tm.getTargetFeatureString());
  }
  auto transformer = mlir::makeOptimizingTransformer(optLevel, 0, &tm);
  if (llvm::Error e = transformer(llvmModule.get())) {
    error = llvm::toString(std::move(e));
    return nullptr;
  }
  return llvmModule;
}

bool loom::emitMachineCode(llvm::Module &module, llvm::TargetMachine &tm,
                           bool assembly, llvm::raw_pwrite_stream &os,
                           std::string &error) {
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr,
                             assembly ? llvm::CodeGenFileType::AssemblyFile
                                      : llvm::CodeGenFileType::ObjectFile)) {
    error = "the target cannot emit this file type";
    return false;
  }
  pm.run(module);
  return true;
}
