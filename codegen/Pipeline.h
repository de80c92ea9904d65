//===- Pipeline.h - from the loom dialect to native code --------*- C++ -*-===//
//
// The compilation phases of a loom model, each a pass pipeline, and the
// target machine they compile for. `loom compile --emit=<phase>` stops after
// a phase; the JIT runs them all.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CODEGEN_PIPELINE_H
#define LOOM_CODEGEN_PIPELINE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/Target/TargetMachine.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace loom {

/// The largest unroll factor `--unroll` and the API accept: more steps per
/// iteration only multiply the code.
constexpr int kMaxUnroll = 64;

/// Which machine to compile for; empty fields mean the host's.
struct TargetOptions {
  std::string triple;
  std::string cpu;
  std::string features; // "+avx2,-avx512f"
  /// LLVM optimization level. O2 vectorizes like O3 here and compiles
  /// faster; the generated loops are simple enough not to need O3.
  unsigned optLevel = 2;
  /// Threads the compiled code runs on (0: every core). Not a property of
  /// the code: the same code runs on any number of threads.
  unsigned threads = 0;
  /// Time steps per iteration of the time loops (loom-unroll-time).
  unsigned unroll = 0; // 0 = compiler's choice
  /// Passes left out of both phases' pipelines, by name (the benchmark's
  /// ablation: each optimization off in turn). Only passes whose absence
  /// still lowers correctly belong here; see bench/run.sh.
  std::vector<std::string> disabledPasses;
  /// Packed weights stored as bfloat16, widened to f32 in the matmul
  /// kernels (inference only: halves the bytes a batch-1 step streams).
  bool bf16Weights = false;
  /// A directory of compiled objects (JitModel's compile cache); empty: no
  /// cache. Entries are keyed on everything above that changes the code,
  /// the module's text, loom's build and the target machine.
  std::string cacheDir;
  /// Code for an object file a program links (`--emit=obj`): position
  /// independent, small code model. The JIT's code is neither.
  bool objectFile = false;
};

/// `pipeline` (a textual pass pipeline) without the passes named in
/// `names`, at any nesting level: "a,func.func(b,c{x=1})" without c is
/// "a,func.func(b)".
std::string withoutPasses(llvm::StringRef pipeline,
                          llvm::ArrayRef<std::string> names);

/// Registers the dialects, passes and LLVM translations the pipeline needs.
void registerCodegen(mlir::DialectRegistry &registry);

/// Creates the target machine for `options`, or sets `error`.
std::unique_ptr<llvm::TargetMachine>
createTargetMachine(const TargetOptions &options, std::string &error);

/// The pass pipelines of each phase, as textual MLIR pipelines on the module
/// (reproduce one with `loom-opt --pass-pipeline='builtin.module(...)'`).
/// The loom phase unrolls the time loops by `target.unroll`.
std::string loomToLinalgPipeline(const TargetOptions &target = {});
/// The register tile of the matmul kernels (loom-vectorize-contractions):
/// f32 lanes per vector, vectors per tile row, rows per tile. Sized so the
/// accumulators use most of the target's vector registers.
struct KernelShape {
  int64_t vectorWidth = 16, vectors = 4, rows = 6; // AVX-512
};
/// The shape for `tm`'s vector features (AVX-512, AVX2/AVX, SSE, NEON);
/// nullptr: AVX-512's.
KernelShape kernelShapeFor(const llvm::TargetMachine *tm);
/// Lowers to the LLVM dialect with kernels shaped for `tm` (nullptr: the
/// pass defaults, AVX-512).
std::string linalgToLLVMPipeline(const llvm::TargetMachine *tm = nullptr);

/// Runs a textual pipeline on `module`; `configure` may add instrumentation
/// (IR printing, timing) to the pass manager first.
mlir::LogicalResult
runPipeline(mlir::ModuleOp module, const char *pipeline,
            const std::function<void(mlir::PassManager &)> &configure = {});

/// Translates a module in the LLVM dialect to LLVM IR for `tm` and optimizes
/// it at the target's optimization level.
std::unique_ptr<llvm::Module> translateAndOptimize(mlir::ModuleOp module,
                                                   llvm::LLVMContext &ctx,
                                                   llvm::TargetMachine &tm,
                                                   unsigned optLevel,
                                                   std::string &error);

/// Emits assembly or an object file for `module` with `tm`.
bool emitMachineCode(llvm::Module &module, llvm::TargetMachine &tm,
                     bool assembly, llvm::raw_pwrite_stream &os,
                     std::string &error);

} // namespace loom

#endif
