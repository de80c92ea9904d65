//===- Jit.cpp - JIT-compiled model functions -------------------------===//
#include "codegen/Jit.h"
#include "codegen/Passes.h"
#include "runtime/FileIO.h"
#include "runtime/Memory.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ExecutionEngine/Orc/AbsoluteSymbols.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SHA256.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace loom;

/// The run-time support compiled code calls (runtime/).
static llvm::orc::SymbolMap
runtimeSymbols(llvm::orc::MangleAndInterner interner) {
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
}

bool loom::describeLowered(mlir::ModuleOp lowered, llvm::StringRef funcName,
                           CallLayout &out, std::string &error) {
  std::string packName = funcName.str() + "__pack";
  out = CallLayout();
  out.entry = "_mlir_ciface_" + funcName.str();
  auto func = lowered.lookupSymbol<mlir::func::FuncOp>(funcName);
  if (!func) {
    error = "no function '" + funcName.str() + "'";
    return false;
  }
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    if (auto p = func.getArgAttrOfType<mlir::StringAttr>(i, kParamArgAttr))
      out.params.push_back(p.str());
    out.ranks.push_back(
        mlir::cast<mlir::ShapedType>(func.getArgument(i).getType()).getRank());
  }
  for (mlir::Type t : func.getResultTypes())
    out.ranks.push_back(mlir::cast<mlir::ShapedType>(t).getRank());
  if (auto pack = lowered.lookupSymbol<mlir::func::FuncOp>(packName)) {
    out.packEntry = "_mlir_ciface_" + packName;
    for (unsigned i = 0; i < pack.getNumArguments(); ++i) {
      auto name = pack.getArgAttrOfType<mlir::StringAttr>(i, kParamArgAttr);
      auto it = llvm::find(out.params, name ? name.str() : "");
      if (it == out.params.end()) {
        error = "internal: the pack function takes an unknown parameter";
        return false;
      }
      out.packParams.push_back(it - out.params.begin());
      out.packRanks.push_back(
          mlir::cast<mlir::ShapedType>(pack.getArgument(i).getType())
              .getRank());
    }
    for (mlir::Type t : pack.getResultTypes()) {
      auto type = mlir::cast<mlir::RankedTensorType>(t);
      out.packRanks.push_back(type.getRank());
      out.packedShapes.emplace_back(type.getShape().begin(),
                                    type.getShape().end());
      // In floats, whatever the element type (bf16 packs two per float).
      int64_t bytes =
          type.getNumElements() * int64_t(type.getElementTypeBitWidth() / 8);
      out.packedFloats.push_back((bytes + 3) / 4);
    }
  }
  out.outputCount = func.getNumResults();
  out.inputCount =
      func.getNumArguments() - out.params.size() - out.packedShapes.size();
  return true;
}

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
  auto model = std::unique_ptr<JitModel>(new JitModel());
  model->entry = "_mlir_ciface_" + funcName.str();
  auto tm = createTargetMachine(target, error);
  if (!tm)
    return nullptr;
  std::string cachePath;
  if (!target.cacheDir.empty()) {
    std::string digest = cacheKey(*clone, funcName, target, *tm);
    llvm::SmallString<256> path(target.cacheDir);
    llvm::sys::path::append(path, digest + ".loomjit");
    cachePath = std::string(path);
    if (model->loadCached(cachePath, digest)) {
      model->setThreads(target.threads);
      return model;
    }
    model = std::unique_ptr<JitModel>(new JitModel());
    model->entry = "_mlir_ciface_" + funcName.str();
    model->cacheDigest = digest;
  }
  if (mlir::failed(runPipeline(*clone, loomToLinalgPipeline(target).c_str()))) {
    error = "lowering to linalg failed";
    return nullptr;
  }
  if (!describeLowered(*clone, funcName, *model, error))
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
  options.enableObjectDump = writePerfMap || !cachePath.empty();
  auto engine = mlir::ExecutionEngine::create(*clone, options, std::move(tm));
  if (!engine) {
    error = "JIT compilation failed: " + llvm::toString(engine.takeError());
    return nullptr;
  }
  model->engine = std::move(*engine);
  // The run-time support compiled code calls.
  model->engine->registerSymbols(runtimeSymbols);
  model->setThreads(target.threads);
  // Generate the machine code now (ORC materializes on the first lookup):
  // a compiled model is ready to run, and compile latency is measured
  // where it is spent, not on the first call.
  for (auto [name, fn] : {std::pair(&model->entry, &model->entryFn),
                          std::pair(&model->packEntry, &model->packFn)}) {
    if (name->empty())
      continue;
    auto addr = model->engine->lookupPacked(*name);
    if (!addr) {
      error = "JIT compilation failed: " + llvm::toString(addr.takeError());
      return nullptr;
    }
    *fn = *addr;
  }
  if (writePerfMap)
    model->writePerfMap();
  if (!cachePath.empty())
    model->storeCached(cachePath, target.cacheDir);
  return model;
}

JitModel::~JitModel() = default;

//===----------------------------------------------------------------------===//
// The compile cache
//
// An entry is one file, <cacheDir>/<key>.loomjit:
//   "LOOMJIT1" | u64 metadata size | metadata (JSON) | u64 object size |
//   object file | SHA-256 of everything before.
// The key is the SHA-256 of loom's version and build (the library file's
// size and modification time), the target machine (triple, CPU, features),
// the options that change the code, the function's name and the module's
// text; the metadata repeats it. A file that is short, has another magic,
// a wrong checksum or key, or whose object does not link, is ignored and
// replaced by a fresh compile.
//===----------------------------------------------------------------------===//

namespace {

constexpr llvm::StringLiteral kCacheMagic = "LOOMJIT1";

/// The file holding this code (libloom.so or an executable), by its size
/// and modification time: a rebuilt loom never reads an older one's cache.
std::string buildIdentity() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void *>(&buildIdentity), &info) ||
      !info.dli_fname)
    return "unknown";
  struct stat st;
  if (stat(info.dli_fname, &st) != 0)
    return info.dli_fname;
  return std::string(info.dli_fname) + " " + std::to_string(st.st_size) + " " +
         std::to_string(int64_t(st.st_mtime)) + "." +
         std::to_string(int64_t(st.st_mtim.tv_nsec));
}

std::string hex(llvm::ArrayRef<uint8_t> bytes) {
  return llvm::toHex(bytes, /*LowerCase=*/true);
}

void putU64(std::string &out, uint64_t v) {
  for (int k = 0; k < 8; ++k)
    out += char((v >> (8 * k)) & 0xff);
}

bool getU64(llvm::StringRef data, size_t &pos, uint64_t &v) {
  if (data.size() < pos + 8)
    return false;
  v = 0;
  for (int k = 0; k < 8; ++k)
    v |= uint64_t(uint8_t(data[pos + k])) << (8 * k);
  pos += 8;
  return true;
}

} // namespace

std::string JitModel::cacheKey(mlir::ModuleOp module, llvm::StringRef funcName,
                               const TargetOptions &target,
                               const llvm::TargetMachine &tm) {
  llvm::SHA256 h;
  auto add = [&](llvm::StringRef s) {
    h.update(s);
    h.update(llvm::StringRef("\0", 1));
  };
  add("loom " LOOM_VERSION);
  add(buildIdentity());
  add(tm.getTargetTriple().str());
  add(tm.getTargetCPU());
  add(tm.getTargetFeatureString());
  add(std::to_string(target.optLevel) + " " + std::to_string(target.unroll) +
      " " + (target.bf16Weights ? "bf16" : "f32"));
  for (const std::string &p : target.disabledPasses)
    add(p);
  add(funcName);
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os, mlir::OpPrintingFlags().printGenericOpForm());
  add(text);
  return hex(h.final());
}

std::string JitModel::serializeMeta() const {
  auto arr = [](const auto &v) {
    llvm::json::Array a;
    for (const auto &x : v)
      a.push_back(x);
    return a;
  };
  llvm::json::Array shapes;
  for (const auto &s : packedShapes)
    shapes.push_back(arr(s));
  llvm::json::Object o{{"key", cacheDigest},
                       {"entry", entry},
                       {"packEntry", packEntry},
                       {"params", arr(params)},
                       {"ranks", arr(ranks)},
                       {"inputs", int64_t(inputCount)},
                       {"outputs", int64_t(outputCount)},
                       {"packParams", arr(packParams)},
                       {"packRanks", arr(packRanks)},
                       {"packedShapes", std::move(shapes)},
                       {"packedFloats", arr(packedFloats)}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(o));
  return text;
}

bool JitModel::parseMeta(llvm::StringRef json) {
  auto v = llvm::json::parse(json);
  if (!v) {
    llvm::consumeError(v.takeError());
    return false;
  }
  const llvm::json::Object *o = v->getAsObject();
  if (!o)
    return false;
  auto str = [&](const char *k, std::string &out) {
    auto s = o->getString(k);
    if (s)
      out = s->str();
    return s.has_value();
  };
  auto ints = [](const llvm::json::Array *a, auto &out) {
    if (!a)
      return false;
    out.clear();
    for (const llvm::json::Value &x : *a) {
      auto i = x.getAsInteger();
      if (!i || *i < 0)
        return false;
      out.push_back(typename std::decay_t<decltype(out)>::value_type(*i));
    }
    return true;
  };
  std::string key;
  if (!str("key", key) || key != cacheDigest || !str("entry", entry) ||
      !str("packEntry", packEntry))
    return false;
  const llvm::json::Array *names = o->getArray("params");
  if (!names)
    return false;
  params.clear();
  for (const llvm::json::Value &x : *names) {
    auto s = x.getAsString();
    if (!s)
      return false;
    params.push_back(s->str());
  }
  auto in = o->getInteger("inputs"), out = o->getInteger("outputs");
  if (!in || !out || !ints(o->getArray("ranks"), ranks) ||
      !ints(o->getArray("packParams"), packParams) ||
      !ints(o->getArray("packRanks"), packRanks) ||
      !ints(o->getArray("packedFloats"), packedFloats))
    return false;
  inputCount = unsigned(*in);
  outputCount = unsigned(*out);
  const llvm::json::Array *shapes = o->getArray("packedShapes");
  if (!shapes)
    return false;
  packedShapes.clear();
  for (const llvm::json::Value &x : *shapes) {
    packedShapes.emplace_back();
    if (!ints(x.getAsArray(), packedShapes.back()))
      return false;
  }
  // The pieces must agree with each other before anything runs.
  return inputCount + params.size() + packedShapes.size() + outputCount ==
             ranks.size() &&
         packedShapes.size() == packedFloats.size() &&
         packRanks.size() == packParams.size() + packedShapes.size() &&
         llvm::all_of(packParams,
                      [&](unsigned k) { return k < params.size(); }) &&
         llvm::all_of(ranks, [](unsigned r) { return r <= 16; });
}

bool JitModel::loadObject(std::unique_ptr<llvm::MemoryBuffer> object,
                          std::string &error) {
  llvm::orc::LLJITBuilder builder;
  builder.setObjectLinkingLayerCreator(
      [](llvm::orc::ExecutionSession &es)
          -> llvm::Expected<std::unique_ptr<llvm::orc::ObjectLayer>> {
        return std::make_unique<llvm::orc::RTDyldObjectLinkingLayer>(
            es, [](const llvm::MemoryBuffer &) {
              return std::make_unique<llvm::SectionMemoryManager>();
            });
      });
  auto jit = builder.create();
  if (!jit) {
    error = llvm::toString(jit.takeError());
    return false;
  }
  llvm::orc::JITDylib &lib = (*jit)->getMainJITDylib();
  auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*jit)->getDataLayout().getGlobalPrefix());
  if (!process) {
    error = llvm::toString(process.takeError());
    return false;
  }
  lib.addGenerator(std::move(*process));
  llvm::orc::MangleAndInterner interner((*jit)->getExecutionSession(),
                                        (*jit)->getDataLayout());
  llvm::orc::SymbolMap symbols = runtimeSymbols(interner);
  if (llvm::Error e = lib.define(llvm::orc::absoluteSymbols(symbols))) {
    error = llvm::toString(std::move(e));
    return false;
  }
  if (llvm::Error e = (*jit)->addObjectFile(std::move(object))) {
    error = llvm::toString(std::move(e));
    return false;
  }
  // The packed wrappers ExecutionEngine generated: "_mlir_" + the name.
  for (auto [name, fn] :
       {std::pair(&entry, &entryFn), std::pair(&packEntry, &packFn)}) {
    if (name->empty())
      continue;
    auto addr = (*jit)->lookup("_mlir_" + *name);
    if (!addr) {
      error = llvm::toString(addr.takeError());
      return false;
    }
    *fn = addr->toPtr<PackedFn>();
  }
  cachedJit = std::move(*jit);
  return true;
}

bool JitModel::loadCached(const std::string &path, const std::string &digest) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return false;
  llvm::StringRef data = (*buffer)->getBuffer();
  size_t pos = kCacheMagic.size();
  uint64_t metaSize = 0, objSize = 0;
  if (!data.starts_with(kCacheMagic) || data.size() < pos + 32 + 16 ||
      !getU64(data, pos, metaSize) || metaSize > data.size() - pos)
    return false;
  llvm::StringRef meta = data.substr(pos, metaSize);
  pos += metaSize;
  if (!getU64(data, pos, objSize) || objSize != data.size() - pos - 32)
    return false;
  llvm::StringRef object = data.substr(pos, objSize);
  auto sum = llvm::SHA256::hash(
      llvm::arrayRefFromStringRef(data.take_front(data.size() - 32)));
  if (llvm::StringRef(reinterpret_cast<const char *>(sum.data()), 32) !=
      data.take_back(32))
    return false;
  cacheDigest = digest;
  if (!parseMeta(meta))
    return false;
  std::string error;
  if (!loadObject(llvm::MemoryBuffer::getMemBufferCopy(object, path), error))
    return false;
  cached = true;
  return true;
}

void JitModel::storeCached(const std::string &path,
                           const std::string &dir) const {
  llvm::SmallString<64> objPath;
  if (llvm::sys::fs::createTemporaryFile("loom-jit", "o", objPath))
    return;
  engine->dumpToObjectFile(objPath);
  auto object = llvm::MemoryBuffer::getFile(objPath, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  llvm::sys::fs::remove(objPath);
  if (!object)
    return;
  std::string meta = serializeMeta();
  std::string head(kCacheMagic);
  putU64(head, meta.size());
  head += meta;
  putU64(head, (*object)->getBufferSize());
  llvm::SHA256 h;
  h.update(head);
  h.update((*object)->getBuffer());
  std::array<uint8_t, 32> sum = h.final();
  // A cache that cannot be written only costs the next compile its time.
  if (llvm::sys::fs::create_directories(dir))
    return;
  Status st = writeFileAtomic(
      path, {{reinterpret_cast<const uint8_t *>(head.data()), head.size()},
             {reinterpret_cast<const uint8_t *>((*object)->getBufferStart()),
              (*object)->getBufferSize()},
             {sum.data(), sum.size()}});
  (void)st;
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

JitModel::Frame JitModel::makeFrame(const std::vector<unsigned> &ranks) {
  // One memref descriptor per argument: {allocated, aligned, offset,
  // sizes[rank], strides[rank]}.
  Frame f;
  f.ranks = ranks;
  size_t words = 0;
  for (unsigned r : ranks) {
    f.offsets.push_back(unsigned(words));
    words += 3 + 2 * r;
  }
  f.desc.assign(words, 0);
  f.ptrs.resize(ranks.size());
  f.args.resize(ranks.size());
  for (size_t i = 0; i < ranks.size(); ++i) {
    f.ptrs[i] = &f.desc[f.offsets[i]];
    f.args[i] = &f.ptrs[i];
  }
  return f;
}

void JitModel::Frame::set(unsigned i, void *data, const int64_t *shape) {
  int64_t *d = &desc[offsets[i]];
  d[0] = d[1] = reinterpret_cast<int64_t>(data);
  d[2] = 0;
  int64_t rank = ranks[i], stride = 1;
  for (int64_t k = rank - 1; k >= 0; --k) {
    d[3 + k] = shape[k];
    d[3 + rank + k] = stride;
    stride *= shape[k];
  }
}

bool JitModel::fill(Frame &f, unsigned first,
                    const std::vector<BufferRef> &buffers, std::string &error) {
  for (size_t k = 0; k < buffers.size(); ++k) {
    unsigned i = first + unsigned(k);
    if (i >= f.size() || buffers[k].shape.size() != f.rank(i)) {
      error = "buffer " + std::to_string(i) + " has rank " +
              std::to_string(buffers[k].shape.size()) + ", expected " +
              (i < f.size() ? std::to_string(f.rank(i)) : "none");
      return false;
    }
    f.set(i, buffers[k].data, buffers[k].shape.data());
  }
  return true;
}

bool JitModel::pack(const std::vector<BufferRef> &weights, Packed &out,
                    std::string &error) const {
  if (weights.size() != params.size()) {
    error = "expected " + std::to_string(params.size()) + " weights, got " +
            std::to_string(weights.size());
    return false;
  }
  if (out.storage.size() != packedShapes.size()) {
    out.storage.clear();
    out.buffers.clear();
    for (size_t k = 0; k < packedShapes.size(); ++k) {
      out.storage.emplace_back(packedFloats[k]);
      out.buffers.push_back({out.storage.back().data(), packedShapes[k]});
    }
  }
  if (!packFn)
    return true;
  Frame f = makeFrame(packRanks);
  std::vector<BufferRef> in;
  for (unsigned k : packParams)
    in.push_back(weights[k]);
  if (!fill(f, 0, in, error) ||
      !fill(f, unsigned(in.size()), out.buffers, error))
    return false;
  call(f, nullptr, packFn);
  return true;
}

void JitModel::bindWeights(Frame &f, const std::vector<BufferRef> &weights,
                           const Packed &packed) const {
  std::string error;
  fill(f, inputCount, weights, error);
  fill(f, inputCount + unsigned(params.size()), packed.buffers, error);
}

void JitModel::call(Frame &f, ThreadPool *pool) const {
  call(f, pool, entryFn);
}

void JitModel::call(Frame &f, ThreadPool *pool, PackedFn fn) {
  ThreadPoolScope scope(pool);
  fn(f.args.data());
}

bool JitModel::run(const std::vector<BufferRef> &inputs,
                   const std::vector<BufferRef> &weights,
                   const std::vector<BufferRef> &outputs, std::string &error) {
  return setWeights(weights, error) && runPrepacked(inputs, outputs, error);
}

bool JitModel::setWeights(const std::vector<BufferRef> &weights,
                          std::string &error) {
  if (!pack(weights, ownPacked, error))
    return false;
  currentWeights = weights;
  return true;
}

bool JitModel::runPrepacked(const std::vector<BufferRef> &inputs,
                            const std::vector<BufferRef> &outputs,
                            std::string &error) {
  if (inputs.size() != inputCount || outputs.size() != outputCount ||
      currentWeights.size() != params.size()) {
    error = "expected " + std::to_string(inputCount) + " inputs, " +
            std::to_string(outputCount) + " outputs and " +
            std::to_string(params.size()) + " weights, got " +
            std::to_string(inputs.size()) + ", " +
            std::to_string(outputs.size()) + " and " +
            std::to_string(currentWeights.size());
    return false;
  }
  Frame f = frame();
  if (!fill(f, 0, inputs, error) ||
      !fill(f, inputCount, currentWeights, error) ||
      !fill(f, inputCount + unsigned(params.size()), ownPacked.buffers,
            error) ||
      !fill(f, f.size() - outputCount, outputs, error))
    return false;
  call(f, pool.get());
  return true;
}
