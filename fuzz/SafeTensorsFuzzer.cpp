//===- SafeTensorsFuzzer.cpp - the safetensors reader -------------------===//
//
// Any bytes: parseSafeTensors returns the tensors or an error, never
// crashes; what it accepts serializes and parses back to the same tensors.
//
//===----------------------------------------------------------------------===//
#include "runtime/SafeTensors.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto f = loom::parseSafeTensors(data, size);
  if (!f.ok())
    return 0;
  auto bytes = loom::serializeSafeTensors(f->tensors, f->metadata);
  if (!bytes.ok())
    return 0; // e.g. a name the writer refuses ("__metadata__" twice)
  auto again = loom::parseSafeTensors(bytes->data(), bytes->size());
  if (!again.ok() || again->tensors.size() != f->tensors.size())
    std::abort();
  for (const auto &[name, t] : f->tensors) {
    const loom::Tensor *u = again->find(name);
    if (!u || u->shape != t.shape || u->dtype != t.dtype || u->data != t.data)
      std::abort();
  }
  return 0;
}
