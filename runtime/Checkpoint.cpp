//===- Checkpoint.cpp - Training checkpoints --------------------------===//

#include "runtime/Checkpoint.h"

#include <charconv>

using namespace loom;

namespace {

const std::string *metadataValue(const SafeTensorsFile &file,
                                 const std::string &key) {
  auto it = file.metadata.find(key);
  return it == file.metadata.end() ? nullptr : &it->second;
}

std::string metadataOr(const SafeTensorsFile &file, const std::string &key) {
  const std::string *v = metadataValue(file, key);
  return v ? *v : std::string();
}

/// A non-negative decimal integer, the whole string.
bool parseCount(const std::string *text, int64_t &out) {
  if (!text || text->empty())
    return false;
  const char *end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, out);
  return ec == std::errc() && ptr == end && out >= 0;
}

/// The tensor `name` of `file` as f32 of exactly `shape`; `what` names it
/// in errors ("parameter", "optimizer state", "carried state").
ErrorOr<Tensor> expectTensor(SafeTensorsFile &file, const std::string &name,
                             const std::vector<int64_t> &shape,
                             const char *what, bool anyFloat) {
  Tensor *t = nullptr;
  for (auto &[n, tensor] : file.tensors)
    if (n == name) {
      t = &tensor;
      break;
    }
  if (!t)
    return Error{std::string("the checkpoint lacks ") + what + " '" + name +
                 "' " + shapeString(shape)};
  if (t->shape != shape)
    return Error{std::string("the checkpoint's ") + what + " '" + name +
                 "' has shape " + t->shapeString() + ", expected " +
                 shapeString(shape)};
  if (t->dtype == DType::F32)
    return std::move(*t); // each name is taken once
  if (!anyFloat || (t->dtype != DType::F16 && t->dtype != DType::BF16))
    return Error{std::string("the checkpoint's ") + what + " '" + name +
                 "' has dtype " + safetensorsDTypeName(t->dtype) +
                 ", expected F32" + (anyFloat ? ", F16 or BF16" : "")};
  auto values = toF32Values(*t);
  if (!values)
    return Error{"tensor '" + name + "': " + values.error()};
  return Tensor::f32(shape, values.take());
}

} // namespace

ErrorOr<Checkpoint> loom::checkpointFrom(SafeTensorsFile file,
                                         const CheckpointSpec &spec) {
  if (metadataOr(file, "format") != kCheckpointFormat)
    return Error{std::string("not a loom training checkpoint (no '") +
                 kCheckpointFormat + "' format in its metadata)"};
  std::string model = metadataOr(file, "model");
  if (model != spec.model || metadataOr(file, "signature") != spec.signature)
    return Error{"the checkpoint is from a different model ('" + model +
                 "' with other parameters); it cannot resume this one"};
  std::string optimizer = metadataOr(file, "optimizer");
  if (optimizer != spec.optimizer)
    return Error{
        "the checkpoint was trained with " +
        (optimizer.empty() ? std::string("no recorded optimizer") : optimizer) +
        ", not " + spec.optimizer};

  Checkpoint ck;
  if (!parseCount(metadataValue(file, "step"), ck.progress.step) ||
      !parseCount(metadataValue(file, "epoch"), ck.progress.epoch) ||
      !parseCount(metadataValue(file, "position"), ck.progress.position))
    return Error{"the checkpoint's progress metadata (step, epoch, position) "
                 "is missing or malformed: each must be a non-negative "
                 "integer"};
  // The seed is informational (the run's --seed decides); keep it if it
  // reads.
  if (const std::string *seed = metadataValue(file, "seed")) {
    const char *end = seed->data() + seed->size();
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(seed->data(), end, v);
    if (ec == std::errc() && ptr == end)
      ck.seed = v;
  }
  if (Status st = ck.schedule.restore(file.metadata); !st.ok())
    return Error{st.error()};

  for (const TensorSpec &p : spec.parameters) {
    auto t = expectTensor(file, p.name, p.shape, "parameter", true);
    if (!t)
      return Error{t.error()};
    ck.parameters[p.name] = t.take();
  }
  for (const TensorSpec &p : spec.slots) {
    auto t = expectTensor(file, p.name, p.shape, "optimizer state", false);
    if (!t)
      return Error{t.error()};
    ck.parameters[p.name] = t.take();
  }
  for (const TensorSpec &c : spec.carries) {
    auto t =
        expectTensor(file, "carry." + c.name, c.shape, "carried state", false);
    if (!t)
      return Error{t.error() +
                   " (a carried state's shape holds the batch size: resume "
                   "with the --batch-size the checkpoint was trained with)"};
    ck.carries[c.name] = t.take();
  }
  return ck;
}

ErrorOr<Checkpoint> loom::readCheckpoint(const std::string &path,
                                         const CheckpointSpec &spec) {
  auto file = readSafeTensors(path);
  if (!file)
    return Error{file.error()};
  auto ck = checkpointFrom(file.take(), spec);
  if (!ck)
    return Error{path + ": " + ck.error()};
  return ck;
}

namespace {

/// The tensors and metadata a checkpoint is stored as.
struct Contents {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
};

Contents contentsOf(const CheckpointSpec &spec,
                    const std::map<std::string, Tensor> &parameters,
                    const std::map<std::string, Tensor> &carries,
                    const TrainProgress &progress, uint64_t seed,
                    const LrSchedule &schedule) {
  Contents c;
  for (const auto &[name, t] : parameters)
    c.tensors.push_back({name, t});
  for (const auto &[name, t] : carries)
    c.tensors.push_back({"carry." + name, t});
  c.metadata = schedule.save();
  c.metadata["format"] = kCheckpointFormat;
  c.metadata["model"] = spec.model;
  c.metadata["signature"] = spec.signature;
  c.metadata["optimizer"] = spec.optimizer;
  c.metadata["step"] = std::to_string(progress.step);
  c.metadata["epoch"] = std::to_string(progress.epoch);
  c.metadata["position"] = std::to_string(progress.position);
  c.metadata["seed"] = std::to_string(seed);
  return c;
}

} // namespace

ErrorOr<std::vector<uint8_t>> loom::serializeCheckpoint(
    const CheckpointSpec &spec, const std::map<std::string, Tensor> &parameters,
    const std::map<std::string, Tensor> &carries, const TrainProgress &progress,
    uint64_t seed, const LrSchedule &schedule) {
  Contents c = contentsOf(spec, parameters, carries, progress, seed, schedule);
  return serializeSafeTensors(c.tensors, c.metadata);
}

Status loom::writeCheckpoint(const std::string &path,
                             const CheckpointSpec &spec,
                             const std::map<std::string, Tensor> &parameters,
                             const std::map<std::string, Tensor> &carries,
                             const TrainProgress &progress, uint64_t seed,
                             const LrSchedule &schedule) {
  Contents c = contentsOf(spec, parameters, carries, progress, seed, schedule);
  return writeSafeTensors(path, c.tensors, c.metadata);
}
