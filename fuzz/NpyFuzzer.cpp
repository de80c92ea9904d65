//===- NpyFuzzer.cpp - the .npy reader ----------------------------------===//
//
// Any bytes: parseNpy returns a tensor or an error, never crashes, and what
// it accepts serializes and parses back to the same tensor.
//
//===----------------------------------------------------------------------===//
#include "runtime/Npy.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto t = loom::parseNpy(data, size);
  if (!t.ok())
    return 0;
  auto bytes = loom::serializeNpy(*t);
  if (!bytes.ok())
    std::abort(); // an accepted tensor must be writable
  auto again = loom::parseNpy(bytes->data(), bytes->size());
  if (!again.ok() || again->shape != t->shape || again->dtype != t->dtype ||
      again->data != t->data)
    std::abort();
  return 0;
}
