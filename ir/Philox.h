//===- Philox.h - the counter-based generator behind dropout ----*- C++ -*-===//
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11), the generator of loom.dropout's training masks. The reference
// interpreter calls this function; the linalg lowering of loom.dropout
// builds the same arithmetic in IR, and tests compare the two.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_IR_PHILOX_H
#define LOOM_IR_PHILOX_H

#include <cstdint>

namespace loom::philox {

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
constexpr int kRounds = 10;

/// The first 32-bit word of Philox4x32-10 for `counter` under `key`.
inline uint32_t firstWord(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                          uint32_t k0, uint32_t k1) {
  for (int r = 0; r < kRounds; ++r) {
    uint64_t p0 = uint64_t(kM0) * c0, p1 = uint64_t(kM1) * c2;
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kW0, k1 += kW1;
  }
  return c0;
}

/// Whether loom.dropout keeps element `index` for (seed, step, stream) at
/// drop probability `p`: u = (word >> 8) / 2^24 ≥ p, compared in float as
/// the lowering does.
inline bool keep(int64_t seed, int64_t step, int64_t stream, int64_t index,
                 float p) {
  uint64_t s = uint64_t(seed), n = uint64_t(index);
  uint32_t w = firstWord(uint32_t(n), uint32_t(n >> 32), uint32_t(stream),
                         uint32_t(step), uint32_t(s), uint32_t(s >> 32));
  float u = float(w >> 8) * (1.0f / 16777216.0f);
  return u >= p;
}

} // namespace loom::philox

#endif // LOOM_IR_PHILOX_H
