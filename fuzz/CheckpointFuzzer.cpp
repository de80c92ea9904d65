//===- CheckpointFuzzer.cpp - the checkpoint loader ---------------------===//
//
// Any bytes: the `--resume` loader (parseSafeTensors, then checkpointFrom
// against FuzzLM's spec, fuzz/CheckpointSpec.h) returns a checkpoint or an
// error, never crashes. What it accepts has every tensor the spec names, in
// f32 and of the spec's shape, and a valid schedule; written back with
// serializeCheckpoint it loads again to the same checkpoint.
//
//===----------------------------------------------------------------------===//
#include "fuzz/CheckpointSpec.h"

#include <cstdlib>

using namespace loom;

namespace {

bool sameTensors(const std::map<std::string, Tensor> &a,
                 const std::map<std::string, Tensor> &b) {
  if (a.size() != b.size())
    return false;
  for (const auto &[name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second.shape != t.shape ||
        it->second.dtype != t.dtype || it->second.data != t.data)
      return false;
  }
  return true;
}

void check(bool ok) {
  if (!ok)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = parseSafeTensors(data, size);
  if (!file)
    return 0;
  CheckpointSpec spec = fuzz::checkpointSpecFor(*file);
  auto ck = checkpointFrom(*file, spec);
  if (!ck)
    return 0;
  for (const auto *list : {&spec.parameters, &spec.slots}) {
    for (const TensorSpec &t : *list) {
      auto it = ck->parameters.find(t.name);
      check(it != ck->parameters.end() && it->second.shape == t.shape &&
            it->second.dtype == DType::F32 &&
            it->second.data.size() == size_t(it->second.numElements()) * 4);
    }
  }
  check(ck->parameters.size() == spec.parameters.size() + spec.slots.size());
  check(ck->carries.size() == spec.carries.size());
  check(ck->progress.step >= 0 && ck->progress.epoch >= 0 &&
        ck->progress.position >= 0 && ck->schedule.lr() > 0);
  auto bytes = serializeCheckpoint(spec, ck->parameters, ck->carries,
                                   ck->progress, ck->seed, ck->schedule);
  check(bytes.ok());
  auto again = parseSafeTensors(bytes->data(), bytes->size());
  check(again.ok());
  auto ck2 = checkpointFrom(*again, spec);
  check(ck2.ok());
  check(sameTensors(ck->parameters, ck2->parameters) &&
        sameTensors(ck->carries, ck2->carries));
  check(ck2->progress.step == ck->progress.step &&
        ck2->progress.epoch == ck->progress.epoch &&
        ck2->progress.position == ck->progress.position &&
        ck2->seed == ck->seed);
  check(ck2->schedule.save() == ck->schedule.save());
  return 0;
}
