//===- Train.cpp - `loom train` and `loom eval` -----------------------===//
//
// The training loop around the compiled step function `<M>_step` (built by
// loom-differentiate and loom-train-step): it feeds batches, carries the
// recurrent states between truncated-BPTT chunks, computes the optimizer's
// per-step numbers (learning rate, bias corrections), validates with
// `<M>_loss`, and writes checkpoints that `--resume` continues bit-exactly.
//
//===----------------------------------------------------------------------===//

#include "tools/loom/Train.h"

#include "ir/LoomOps.h"
#include "passes/Passes.h"
#include "passes/TrainSettings.h"
#include "runtime/Checkpoint.h"
#include "runtime/Dataset.h"
#include "runtime/SafeTensors.h"
#include "runtime/Schedule.h"
#include "runtime/TextData.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <optional>

using namespace loom;

namespace {

mlir::func::FuncOp lookupFunc(mlir::ModuleOp m, const std::string &name) {
  return m.lookupSymbol<mlir::func::FuncOp>(name);
}

/// What the loss function's inputs are: data inputs by name, carried
/// states, the dropout key.
struct Ports {
  ModelSignature sig;
  std::vector<std::string> carried; // state input names
  bool dropout = false;
  std::string batchSymbol = "B";
  int64_t vocab = 0;      // rows of the embedding fed by `tokens` (LM)
  std::string labelInput; // the loss's targets (datasets)
};

Ports portsOf(mlir::func::FuncOp lossFn) {
  Ports p;
  p.sig = signatureOf(lossFn);
  for (unsigned k = 1; k < lossFn.getNumResults(); ++k)
    if (lossFn.getResultAttr(k, kCarryAttr))
      p.carried.push_back(
          lossFn.getResultAttrOfType<mlir::StringAttr>(k, kNameAttr).str());
  for (const ModelPort &in : p.sig.inputs)
    p.dropout |= in.name == kDropoutKeyName;
  for (const ModelPort &in : p.sig.inputs)
    if (in.name == "tokens" && in.dims.size() >= 2)
      p.batchSymbol = in.dims[1];
  auto argName = [&](mlir::Value v) -> std::string {
    auto ba = mlir::dyn_cast<mlir::BlockArgument>(v);
    if (!ba || ba.getOwner() != &lossFn.getBody().front())
      return "";
    return p.sig.inputs[ba.getArgNumber()].name;
  };
  lossFn.walk([&](mlir::Operation *op) {
    if (auto e = mlir::dyn_cast<EmbeddingOp>(op))
      if (argName(e.getIds()) == "tokens")
        p.vocab = mlir::cast<mlir::RankedTensorType>(e.getWeight().getType())
                      .getDimSize(0);
    if (mlir::isa<CrossEntropyOp, NllOp>(op) && p.labelInput.empty())
      p.labelInput = argName(op->getOperand(1));
  });
  return p;
}

bool isCarried(const Ports &p, const std::string &name) {
  return llvm::is_contained(p.carried, name);
}

/// Zeros of a state input's declared shape with the batch size substituted.
std::optional<Tensor> zeroState(const Ports &p, const std::string &name,
                                int64_t batch) {
  for (const ModelPort &in : p.sig.inputs) {
    if (in.name != name)
      continue;
    std::vector<int64_t> shape;
    for (const std::string &d : in.dims) {
      if (d == p.batchSymbol) {
        shape.push_back(batch);
        continue;
      }
      int64_t v = 0;
      if (!llvm::to_integer(d, v)) {
        fail("state input '" + name + "' has size '" + d +
             "' that training cannot infer (only the batch size '" +
             p.batchSymbol + "' may be a run-time size)");
        return std::nullopt;
      }
      shape.push_back(v);
    }
    return Tensor::zeros(DType::F32, shape);
  }
  return std::nullopt;
}

/// A [rows, ...] batch made sequence-major when the model input's declared
/// dimensions put the batch second ([T, B, ...]).
Tensor toModelLayout(Tensor t, const ModelPort &port,
                     const std::string &batchSymbol) {
  if (t.shape.size() < 2 || port.dims.size() < 2 ||
      port.dims[0] == batchSymbol || port.dims[1] != batchSymbol)
    return t;
  int64_t B = t.shape[0], T = t.shape[1];
  int64_t inner = t.numElements() / (B * T);
  Tensor out = Tensor::zeros(t.dtype, t.shape);
  std::swap(out.shape[0], out.shape[1]);
  size_t es = t.data.size() / size_t(t.numElements());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < T; ++s)
      std::memcpy(&out.data[size_t((s * B + b) * inner) * es],
                  &t.data[size_t((b * T + s) * inner) * es],
                  size_t(inner) * es);
  return out;
}

/// The data a run trains or evaluates on.
struct Data {
  // Language modelling: batchified token streams.
  bool lm = false;
  std::optional<Vocabulary> vocab;
  Batchified train, valid;
  bool hasValid = false;
  // Datasets of named arrays.
  Dataset trainSet, validSet;

  int64_t stepsPerEpoch(int64_t bptt, int64_t batch) const {
    if (lm)
      return numChunks(train, bptt);
    return (trainSet.size + batch - 1) / batch;
  }
};

/// `<checkpoint>.vocab.json`: the checkpoint's name with the extension
/// replaced, as `loom sample` looks for it (`lm.safetensors` →
/// `lm.vocab.json`).
std::string vocabPathOf(const std::string &file) {
  llvm::SmallString<256> p(file);
  llvm::sys::path::replace_extension(p, "vocab.json");
  return std::string(p);
}

/// Reads a token stream (.npy) or a text corpus (encoded with `vocab`).
std::optional<std::vector<int64_t>> readStream(const std::string &path,
                                               const Vocabulary *vocab,
                                               int64_t modelVocab) {
  if (llvm::StringRef(path).ends_with(".npy")) {
    auto ids = readTokenStream(path);
    if (!ids) {
      fail(ids.error());
      return std::nullopt;
    }
    Status st = checkTokenIds(*ids, modelVocab, path);
    if (!st.ok()) {
      fail(st.error());
      return std::nullopt;
    }
    return ids.take();
  }
  auto text = readTextCorpus(path);
  if (!text) {
    fail(text.error());
    return std::nullopt;
  }
  auto ids = vocab->encode(*text, path);
  if (!ids) {
    fail(ids.error() + " (vocabulary mismatch: was the model trained on "
                       "another corpus?)");
    return std::nullopt;
  }
  return ids.take();
}

/// Loads the LM data: the vocabulary comes from `vocabFile` when given
/// (resuming, evaluating), else is built from the training text.
bool loadLmData(const TrainRequest &req, const Settings &s, const Ports &p,
                const std::string &vocabFile, bool evaluating, Data &d) {
  d.lm = true;
  bool text = !llvm::StringRef(req.data).ends_with(".npy");
  if (text) {
    std::string kind = s.str("tokenizer");
    Status k = checkTokenizerKind(kind);
    if (!k.ok())
      return fail(s.where("tokenizer") + ": " + k.error()) == 0;
    if (!vocabFile.empty() && llvm::sys::fs::exists(vocabFile)) {
      auto v = Vocabulary::load(vocabFile);
      if (!v)
        return fail(v.error()) == 0;
      d.vocab = v.take();
    } else if (evaluating) {
      return fail("no vocabulary for the text: expected " + vocabFile +
                  " (written by loom train), or give --vocab FILE") == 0;
    } else {
      auto corpus = readTextCorpus(req.data);
      if (!corpus)
        return fail(corpus.error()) == 0;
      std::string all = *corpus;
      if (!req.valid.empty()) {
        auto v = readTextCorpus(req.valid);
        if (!v)
          return fail(v.error()) == 0;
        all += *v;
      }
      d.vocab = Vocabulary::build(kind, all);
    }
    if (d.vocab->size() > p.vocab)
      return fail("vocabulary mismatch: the text has " +
                  std::to_string(d.vocab->size()) + " distinct " +
                  d.vocab->kind + " tokens but the model's vocabulary is " +
                  std::to_string(p.vocab) + " (its embedding's rows)") == 0;
  }
  auto stream = readStream(req.data, d.vocab ? &*d.vocab : nullptr, p.vocab);
  if (!stream)
    return false;
  std::vector<int64_t> validStream;
  if (!req.valid.empty()) {
    auto v = readStream(req.valid, d.vocab ? &*d.vocab : nullptr, p.vocab);
    if (!v)
      return false;
    validStream = std::move(*v);
    d.hasValid = true;
  } else if (!evaluating) {
    auto f = s.num("valid_fraction");
    if (!f)
      return false;
    if (*f >= 1)
      return fail("--valid-fraction must be below 1") == 0;
    if (*f > 0) {
      size_t n = size_t(double(stream->size()) * *f);
      validStream.assign(stream->end() - n, stream->end());
      stream->resize(stream->size() - n);
      d.hasValid = true;
    }
  }
  auto bptt = s.integer("bptt");
  auto batch = s.integer(evaluating ? "eval_batch_size" : "batch_size");
  auto evalBatch = s.integer("eval_batch_size");
  if (!bptt || !batch || !evalBatch)
    return false;
  auto train = batchify(*stream, *batch, *bptt, req.data);
  if (!train)
    return fail(train.error()) == 0;
  d.train = train.take();
  if (d.hasValid) {
    auto valid = batchify(
        validStream, *evalBatch, *bptt,
        req.valid.empty() ? "the validation part of " + req.data : req.valid);
    if (!valid)
      return fail(valid.error()) == 0;
    d.valid = valid.take();
  }
  return true;
}

bool loadDatasets(const TrainRequest &req, const Settings &s, const Ports &p,
                  bool evaluating, Data &d) {
  auto train = loadDataset(evaluating ? req.data : req.dataset);
  if (!train)
    return fail(train.error()) == 0;
  d.trainSet = train.take();
  if (!evaluating && !req.valid.empty()) {
    auto v = loadDataset(req.valid);
    if (!v)
      return fail(v.error()) == 0;
    d.validSet = v.take();
    d.hasValid = true;
  } else if (!evaluating) {
    auto f = s.num("valid_fraction");
    if (!f)
      return false;
    if (*f > 0) {
      auto v = splitTail(d.trainSet, *f);
      if (!v)
        return fail(v.error()) == 0;
      d.validSet = v.take();
      d.hasValid = true;
    }
  }
  // Every model input other than carried states and the dropout key must
  // be in the dataset.
  for (const ModelPort &in : p.sig.inputs)
    if (in.name != kDropoutKeyName && !isCarried(p, in.name) &&
        !d.trainSet.find(in.name))
      return fail("the dataset has no array '" + in.name +
                  "' for the model input " + in.describe()) == 0;
  if (d.trainSet.size == 0)
    return fail("the dataset is empty") == 0;
  return true;
}

/// The model inputs of one batch of a dataset (rows `rows`).
std::map<std::string, Tensor> datasetBatch(const Dataset &set, const Ports &p,
                                           const std::vector<int64_t> &rows) {
  std::map<std::string, Tensor> out;
  for (const ModelPort &in : p.sig.inputs) {
    const Tensor *a = set.find(in.name);
    if (!a)
      continue;
    out[in.name] = toModelLayout(gatherRows(*a, rows), in, p.batchSymbol);
  }
  return out;
}

/// For JSON logs: short but with float32's precision.
std::string format(double v) {
  return llvm::formatv("{0}", llvm::format("%.9g", v)).str();
}

/// A hash of the model's parameter names and shapes and its name, to tell a
/// checkpoint of another model apart.
std::string signatureHash(mlir::func::FuncOp lossFn) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](llvm::StringRef s) {
    for (char c : s)
      h = (h ^ uint8_t(c)) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  for (const ParamInfo &pi : parametersOf(lossFn)) {
    mix(pi.name);
    mix(shapeString(pi.shape));
  }
  return llvm::utohexstr(h);
}

/// Runs a function: inputs by name (from `named`, checked as `loom run`
/// checks them: dtypes and shapes, and with `checkValues` also ids and
/// lengths — dataset batches; a token stream's ids are checked once when it
/// is read), outputs by name.
bool runNamed(Runner &r, mlir::func::FuncOp fn, const ModelSignature &sig,
              std::map<std::string, Tensor> &named,
              std::map<std::string, Tensor> &out, bool checkValues,
              std::string &error) {
  std::map<std::string, Tensor> given;
  for (const ModelPort &in : sig.inputs) {
    auto it = named.find(in.name);
    if (it == named.end()) {
      error = "no value for input '" + in.name + "'";
      return false;
    }
    given[in.name] = it->second;
  }
  auto inputs = bindInputs(fn, given);
  if (!inputs) {
    error = inputs.error();
    return false;
  }
  if (checkValues) {
    Status values = checkInputValues(fn, *inputs);
    if (!values.ok()) {
      error = values.error();
      return false;
    }
  }
  std::vector<Tensor> results;
  if (!r.run(*inputs, results, error))
    return false;
  out.clear();
  for (size_t k = 0; k < results.size(); ++k)
    out[sig.outputs[k].name] = std::move(results[k]);
  return true;
}

Tensor scalarTensor(float v) { return Tensor::f32({}, {v}); }

/// Validation / evaluation: mean loss (and accuracy for datasets).
struct EvalResult {
  double loss = 0;
  double accuracy = -1;
  int64_t count = 0;
};

class Evaluator {
public:
  Evaluator(mlir::ModuleOp module, mlir::func::FuncOp lossFn,
            mlir::func::FuncOp modelFn, const Ports &p, bool useJit,
            const TargetOptions &target)
      : module(module), lossFn(lossFn), modelFn(modelFn), p(p),
        lossRunner(useJit, target), modelRunner(useJit, target) {}

  bool evaluate(const std::map<std::string, Tensor> &params, const Data &d,
                bool onTrainData, int64_t bptt, EvalResult &res) {
    std::string error;
    if (!compiled) {
      if (!lossRunner.init(module, lossFn, params, error))
        return fail(error) == 0;
      if (!d.lm && !modelRunner.init(module, modelFn, params, error))
        return fail(error) == 0;
      compiled = true;
    }
    lossRunner.parameters() = params;
    if (!d.lm)
      modelRunner.parameters() = params;
    ModelSignature sig = signatureOf(lossFn);
    std::map<std::string, Tensor> named, out;
    if (p.dropout)
      named[kDropoutKeyName] = Tensor::i64({2}, {-1, 0});
    double total = 0;
    if (d.lm) {
      const Batchified &data = onTrainData ? d.train : d.valid;
      for (const std::string &c : p.carried) {
        auto z = zeroState(p, c, data.batch);
        if (!z)
          return false;
        named[c] = *z;
      }
      int64_t n = numChunks(data, bptt);
      for (int64_t i = 0; i < n; ++i) {
        getBatch(data, i, bptt, named["tokens"], named["targets"]);
        if (!runNamed(lossRunner, lossFn, sig, named, out, !d.lm, error))
          return fail(error) == 0;
        int64_t len = named["tokens"].shape[0];
        total += len * double(out["loss"].f32Data()[0]);
        for (const std::string &c : p.carried)
          named[c] = out[c];
      }
      res.count = data.rows - 1;
      res.loss = total / double(data.rows - 1);
      return true;
    }
    const Dataset &set = onTrainData ? d.trainSet : d.validSet;
    int64_t batch = evalBatch, correct = 0;
    ModelSignature msig = signatureOf(modelFn);
    for (int64_t start = 0; start < set.size; start += batch) {
      std::vector<int64_t> rows;
      for (int64_t r = start; r < std::min(set.size, start + batch); ++r)
        rows.push_back(r);
      for (auto &[k, v] : datasetBatch(set, p, rows))
        named[k] = v;
      for (const std::string &c : p.carried) {
        auto z = zeroState(p, c, int64_t(rows.size()));
        if (!z)
          return false;
        named[c] = *z;
      }
      if (!runNamed(lossRunner, lossFn, sig, named, out, !d.lm, error))
        return fail("evaluating rows " + std::to_string(start) + ".." +
                    std::to_string(rows.back()) + ": " + error) == 0;
      total += double(rows.size()) * out["loss"].f32Data()[0];
      std::map<std::string, Tensor> mout;
      if (!runNamed(modelRunner, modelFn, msig, named, mout, true, error))
        return fail(error) == 0;
      const Tensor &logits = mout[msig.outputs[0].name];
      const Tensor &labels = named[p.labelInput];
      if (logits.shape.size() == 2 && labels.numElements() == logits.shape[0]) {
        int64_t C = logits.shape[1];
        for (int64_t r = 0; r < logits.shape[0]; ++r) {
          const float *row = logits.f32Data() + r * C;
          int64_t best = std::max_element(row, row + C) - row;
          correct += best == labels.i64Data()[r];
        }
      }
    }
    res.count = set.size;
    res.loss = total / double(set.size);
    res.accuracy = double(correct) / double(set.size);
    return true;
  }

  int64_t evalBatch = 10;

private:
  mlir::ModuleOp module;
  mlir::func::FuncOp lossFn, modelFn;
  const Ports &p;
  Runner lossRunner, modelRunner;
  bool compiled = false;
};

std::string describeEval(const EvalResult &r, bool lm) {
  std::string s = llvm::formatv("loss {0:F6}", r.loss).str();
  if (lm)
    s += llvm::formatv(" perplexity {0:F3}", std::exp(r.loss)).str();
  if (r.accuracy >= 0)
    s += llvm::formatv(" accuracy {0:F4}", r.accuracy).str();
  return s;
}

/// Prepares the module and finds its functions. With `step`, also builds
/// `<M>_step`.
bool prepare(Loaded &m, const Optim *optim, mlir::func::FuncOp &lossFn,
             mlir::func::FuncOp &stepFn) {
  std::string base = m.func.getName().str();
  lossFn = lookupFunc(*m.module, base + "_loss");
  if (!lossFn)
    return fail("model '" + base +
                "' has no loss; add a line like `loss cross_entropy(logits, "
                "targets)`") == 0;
  if (!optim)
    return true;
  std::string pipeline = optim->pipeline();
  if (mlir::failed(runPipeline(*m.module, pipeline.c_str())))
    return fail("building the training step failed") == 0;
  lossFn = lookupFunc(*m.module, base + "_loss");
  stepFn = lookupFunc(*m.module, base + "_step");
  if (!stepFn)
    return fail("building the training step produced no step function") == 0;
  return true;
}

} // namespace

int loom::runTrain(TrainRequest &req) {
  Loaded &m = *req.model;
  if (req.checkpoint.empty())
    return fail("train needs --checkpoint OUT.safetensors");
  if (req.data.empty() == req.dataset.empty())
    return fail("train needs --data CORPUS.txt|TOKENS.npy or --dataset "
                "NAME=FILE.npy,...");
  if (!req.valid.empty() && req.flags.count("valid_fraction"))
    return fail("give either --valid or --valid-fraction, not both");
  std::string base = m.func.getName().str();
  auto trainDict = lookupFunc(*m.module, base + "_loss");
  if (!trainDict)
    return fail("model '" + base +
                "' has no loss; add a line like `loss cross_entropy(logits, "
                "targets)`");
  Settings s(trainDict, req.flags, [](const std::string &m) { fail(m); });
  Optim optim;
  if (!optim.read(s))
    return 1;
  mlir::func::FuncOp lossFn, stepFn;
  if (!prepare(m, &optim, lossFn, stepFn))
    return 1;
  Ports p = portsOf(lossFn);
  ModelSignature stepSig = signatureOf(stepFn);

  auto bpttV = s.integer("bptt");
  auto batchV = s.integer("batch_size");
  auto evalBatchV = s.integer("eval_batch_size");
  auto evalEveryV = s.num("eval_every");
  if (!bpttV || !batchV || !evalBatchV || !evalEveryV)
    return 1;
  int64_t bptt = *bpttV, batch = *batchV;
  auto kind = parseScheduleKind(s.str("lr_schedule"));
  if (!kind)
    return fail(s.where("lr_schedule") + ": " + kind.error());
  auto lrStep = s.integer("lr_step");
  auto lrGamma = s.num("lr_gamma");
  auto lrDecay = s.num("lr_decay");
  if (!lrStep || !lrGamma || !lrDecay)
    return 1;
  auto schedule =
      LrSchedule::create(*kind, optim.lr, *lrStep, *lrGamma, *lrDecay);
  if (!schedule)
    return fail(schedule.error());

  Data d;
  std::string vocabFile = req.resume             ? vocabPathOf(req.checkpoint)
                          : !req.vocab.empty()   ? req.vocab
                          : !req.weights.empty() ? vocabPathOf(req.weights)
                                                 : "";
  if (!req.data.empty()) {
    if (p.vocab == 0)
      return fail("--data trains a language model: the loss function needs "
                  "inputs 'tokens' (fed to an embedding) and 'targets'; "
                  "use --dataset for other models");
    if (!loadLmData(req, s, p, vocabFile, false, d))
      return 1;
  } else if (!loadDatasets(req, s, p, false, d)) {
    return 1;
  }
  int64_t perEpoch = d.stepsPerEpoch(bptt, batch);
  int64_t totalSteps = perEpoch;
  if (req.flags.count("steps") || s.has("steps")) {
    auto v = s.integer("steps");
    if (!v)
      return 1;
    totalSteps = *v;
  } else if (s.has("epochs")) {
    auto v = s.integer("epochs");
    if (!v)
      return 1;
    totalSteps = *v * perEpoch;
  }

  // What a checkpoint of this run holds: the parameters, the optimizer
  // slots (every other step-function input that is neither data nor a
  // scalar) and, for language models, the states carried between chunks.
  std::vector<ParamInfo> infos = parametersOf(lossFn);
  CheckpointSpec spec;
  spec.model = base;
  spec.signature = signatureHash(lossFn);
  spec.optimizer = optim.kind;
  for (const ParamInfo &pi : infos)
    spec.parameters.push_back({pi.name, pi.shape});
  for (const ParamInfo &pi : parametersOf(stepFn))
    if (!llvm::any_of(infos,
                      [&](const ParamInfo &q) { return q.name == pi.name; }))
      spec.slots.push_back({pi.name, pi.shape});
  std::map<std::string, Tensor> carries;
  auto resetCarries = [&]() -> bool {
    for (const std::string &c : p.carried) {
      auto z = zeroState(p, c, batch);
      if (!z)
        return false;
      carries[c] = *z;
    }
    return true;
  };
  if (!resetCarries())
    return 1;
  if (d.lm)
    for (const auto &[name, t] : carries)
      spec.carries.push_back({name, t.shape});

  // Parameters, optimizer state, progress and schedule: from the
  // checkpoint when resuming, else fresh.
  std::map<std::string, Tensor> params;
  TrainProgress prog;
  if (req.resume) {
    auto ck = readCheckpoint(req.checkpoint, spec);
    if (!ck)
      return fail("--resume: " + ck.error());
    params = std::move(ck->parameters);
    for (auto &[name, t] : ck->carries)
      carries[name] = std::move(t);
    prog = ck->progress;
    *schedule = ck->schedule;
  } else {
    if (!req.weights.empty()) {
      auto w = readSafeTensors(req.weights);
      if (!w)
        return fail(w.error());
      auto bound = bindWeights(lossFn, *w);
      if (!bound)
        return fail(req.weights + ": " + bound.error());
      params = bound.take();
    } else {
      for (auto &[name, t] : initialParameters(lossFn, req.seed))
        params[name] = std::move(t);
    }
    for (const TensorSpec &slot : spec.slots)
      params[slot.name] = Tensor::zeros(DType::F32, slot.shape);
  }

  if (prog.step >= totalSteps)
    return fail("--resume: the checkpoint has already done " +
                std::to_string(prog.step) + " steps (--steps is " +
                std::to_string(totalSteps) + ")");

  // Compile.
  Runner stepRunner(req.useJit, req.target);
  std::string error;
  if (!stepRunner.init(*m.module, stepFn, params, error))
    return fail(error);
  Evaluator eval(*m.module, lossFn, m.func, p, req.useJit, req.target);
  eval.evalBatch = *evalBatchV;

  std::unique_ptr<llvm::raw_fd_ostream> logJson;
  if (!req.logJson.empty()) {
    std::error_code ec;
    logJson = std::make_unique<llvm::raw_fd_ostream>(
        req.logJson, ec,
        req.resume ? llvm::sys::fs::OF_Append : llvm::sys::fs::OF_None);
    if (ec)
      return fail(req.logJson + ": " + ec.message());
  }

  auto saveCheckpoint = [&]() -> bool {
    if (d.vocab) {
      Status v = d.vocab->save(vocabPathOf(req.checkpoint));
      if (!v.ok())
        return fail(v.error()) == 0;
    }
    static const std::map<std::string, Tensor> none;
    Status st =
        writeCheckpoint(req.checkpoint, spec, stepRunner.parameters(),
                        d.lm ? carries : none, prog, req.seed, *schedule);
    if (!st.ok())
      return fail(st.error()) == 0;
    return true;
  };

  bool terminal = llvm::sys::Process::StandardErrIsDisplayed();
  auto start = std::chrono::steady_clock::now();
  // tokens: since the timer started (after the first step); allTokens: all.
  int64_t tokens = 0, allTokens = 0, firstStep = prog.step;
  std::map<std::string, Tensor> named, out;
  std::vector<int64_t> order; // the dataset's row order for orderEpoch
  int64_t orderEpoch = -1;

  auto validate = [&]() -> bool {
    if (!d.hasValid)
      return true;
    EvalResult r;
    if (!eval.evaluate(stepRunner.parameters(), d, false, bptt, r))
      return false;
    if (terminal)
      llvm::errs() << "\r\x1b[K";
    llvm::outs() << "step " << prog.step << " valid " << describeEval(r, d.lm)
                 << "\n";
    llvm::outs().flush();
    if (logJson) {
      *logJson << "{\"step\": " << prog.step << ", \"epoch\": " << prog.epoch
               << ", \"valid_loss\": " << format(r.loss);
      if (d.lm)
        *logJson << ", \"valid_perplexity\": " << format(std::exp(r.loss));
      if (r.accuracy >= 0)
        *logJson << ", \"valid_accuracy\": " << format(r.accuracy);
      *logJson << "}\n";
      logJson->flush();
    }
    schedule->onValidation(r.loss);
    return true;
  };

  while (prog.step < totalSteps) {
    if (prog.position >= perEpoch) {
      ++prog.epoch;
      prog.position = 0;
      if (!resetCarries())
        return 1;
    }
    // The batch.
    int64_t batchRows = 0;
    if (d.lm) {
      getBatch(d.train, prog.position, bptt, named["tokens"], named["targets"]);
    } else {
      if (orderEpoch != prog.epoch) {
        order = shuffledOrder(d.trainSet.size, req.seed, prog.epoch);
        orderEpoch = prog.epoch;
      }
      std::vector<int64_t> rows;
      for (int64_t r = prog.position * batch;
           r < std::min(d.trainSet.size, (prog.position + 1) * batch); ++r)
        rows.push_back(order[r]);
      batchRows = int64_t(rows.size());
      for (auto &[k, v] : datasetBatch(d.trainSet, p, rows))
        named[k] = v;
      // Samples are independent: states start at zero for every batch.
      for (const std::string &c : p.carried) {
        auto z = zeroState(p, c, int64_t(rows.size()));
        if (!z)
          return 1;
        carries[c] = *z;
      }
    }
    for (const auto &[k, v] : carries)
      named[k] = v;
    if (p.dropout)
      named[kDropoutKeyName] = Tensor::i64(
          {2}, {int64_t(req.seed & 0x7fffffffffffffffull), prog.step});
    double lr = schedule->lr();
    for (const auto &[k, v] : optim.scalars(prog.step, lr))
      named[k] = scalarTensor(v);

    if (!runNamed(stepRunner, stepFn, stepSig, named, out, !d.lm, error))
      return fail("training step " + std::to_string(prog.step + 1) + ": " +
                  error);
    float loss = out["loss"].f32Data()[0];
    if (!std::isfinite(loss))
      return fail(llvm::formatv("step {0}: the loss is {1}; stopping. The "
                                "last checkpoint ({2}) is kept as it was",
                                prog.step + 1, loss, req.checkpoint)
                      .str());
    for (auto &[name, t] : stepRunner.parameters())
      t = std::move(out[name]);
    for (auto &[name, t] : carries)
      t = std::move(out[name]);
    // Throughput counts predicted tokens for LMs and samples for datasets.
    int64_t stepTokens = d.lm ? named["targets"].numElements() : batchRows;
    tokens += stepTokens;
    allTokens += stepTokens;
    if (prog.step == firstStep) {
      // The first call also compiles lazily: time from its end.
      start = std::chrono::steady_clock::now();
      tokens = 0;
    }
    ++prog.step;
    ++prog.position;
    schedule->onStep(prog.step);

    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    double tps = secs > 0 ? tokens / secs : 0;
    if (req.logEvery > 0 && prog.step % req.logEvery == 0) {
      if (terminal)
        llvm::errs() << "\r\x1b[K";
      llvm::outs() << "step " << prog.step << " loss "
                   << llvm::format("%.6f", loss) << "\n";
      llvm::outs().flush();
    }
    if (logJson) {
      *logJson << "{\"step\": " << prog.step << ", \"epoch\": " << prog.epoch
               << ", \"loss\": " << llvm::format("%.9g", loss)
               << ", \"lr\": " << format(lr);
      if (out.count("grad_norm"))
        *logJson << ", \"grad_norm\": "
                 << llvm::format("%.9g", out["grad_norm"].f32Data()[0]);
      *logJson << (d.lm ? ", \"tokens_per_sec\": " : ", \"samples_per_sec\": ")
               << llvm::format("%.1f", tps) << "}\n";
      logJson->flush();
    }
    if (terminal) {
      double eta = (totalSteps - prog.step) * secs /
                   double(std::max<int64_t>(1, prog.step - firstStep - 1));
      llvm::errs() << llvm::formatv(
          "\r\x1b[Kstep {0}/{1} epoch {2} loss {3:F4} {4:F0} tok/s ETA {5:F0}s",
          prog.step, totalSteps, prog.epoch + 1, loss, tps, eta);
    }
    bool epochEnd = prog.position >= perEpoch;
    bool evalNow = (*evalEveryV > 0 && prog.step % int64_t(*evalEveryV) == 0) ||
                   (*evalEveryV == 0 && epochEnd);
    if (evalNow && !validate())
      return 1;
    if ((req.checkpointEvery > 0 && prog.step % req.checkpointEvery == 0) ||
        evalNow || prog.step == totalSteps)
      if (!saveCheckpoint())
        return 1;
  }
  if (terminal)
    llvm::errs() << "\r\x1b[K";
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  const char *unit = d.lm ? "tokens" : "samples";
  llvm::outs() << llvm::formatv("trained {0} steps ({1} {2}, {3:F0} {2}/s); "
                                "checkpoint: {4}\n",
                                prog.step - firstStep, allTokens, unit,
                                secs > 0 ? tokens / secs : 0.0, req.checkpoint);
  return 0;
}

int loom::runEval(TrainRequest &req) {
  Loaded &m = *req.model;
  if (req.weights.empty())
    return fail("eval needs --weights FILE.safetensors");
  if (req.data.empty() == req.dataset.empty())
    return fail("eval needs --data TEXT|TOKENS.npy or --dataset "
                "NAME=FILE.npy,...");
  mlir::func::FuncOp lossFn, stepFn;
  if (!prepare(m, nullptr, lossFn, stepFn))
    return 1;
  Settings s(lossFn, req.flags, [](const std::string &m) { fail(m); });
  Ports p = portsOf(lossFn);
  auto w = readSafeTensors(req.weights);
  if (!w)
    return fail(w.error());
  auto params = bindWeights(lossFn, *w);
  if (!params)
    return fail(req.weights + ": " + params.error());
  Data d;
  auto bptt = s.integer("bptt");
  auto evalBatch = s.integer("eval_batch_size");
  if (!bptt || !evalBatch)
    return 1;
  if (!req.data.empty()) {
    if (p.vocab == 0)
      return fail("--data evaluates a language model (inputs 'tokens' and "
                  "'targets'); use --dataset for other models");
    std::string vocabFile =
        !req.vocab.empty() ? req.vocab : vocabPathOf(req.weights);
    if (!loadLmData(req, s, p, vocabFile, true, d))
      return 1;
  } else {
    TrainRequest r = req;
    r.data = req.dataset;
    if (!loadDatasets(r, s, p, true, d))
      return 1;
  }
  Evaluator eval(*m.module, lossFn, m.func, p, req.useJit, req.target);
  eval.evalBatch = *evalBatch;
  EvalResult r;
  if (!eval.evaluate(params.take(), d, true, *bptt, r))
    return 1;
  llvm::outs() << describeEval(r, d.lm) << "\n";
  return 0;
}
