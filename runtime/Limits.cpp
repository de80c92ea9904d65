//===- Limits.cpp - Resource limits ---------------------------------------===//

#include "runtime/Limits.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

using namespace loom;

namespace {

struct LimitState {
  std::mutex mutex;
  bool initialized = false;
  uint64_t bytes = UINT64_MAX;
  std::string source;
};

LimitState &state() {
  static LimitState s;
  return s;
}

uint64_t physicalMemory() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && size > 0)
    return saturatingMul(uint64_t(pages), uint64_t(size));
#endif
  return UINT64_MAX;
}

/// Initializes from the environment once; the caller holds the mutex.
void initialize(LimitState &s) {
  if (s.initialized)
    return;
  s.initialized = true;
  if (const char *env = std::getenv("LOOM_MAX_MEMORY")) {
    auto v = parseByteSize(env);
    if (v) {
      s.bytes = *v;
      s.source = "LOOM_MAX_MEMORY";
      return;
    }
    // A bad value must not silently lift the limit: keep the default and
    // say so once.
    std::fprintf(stderr, "loom: warning: ignoring LOOM_MAX_MEMORY: %s\n",
                 v.error().c_str());
  }
  s.bytes = physicalMemory();
  s.source = "the machine's memory";
}

} // namespace

uint64_t loom::saturatingMul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t loom::saturatingAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t loom::memoryLimit() {
  LimitState &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  initialize(s);
  return s.bytes;
}

std::string loom::memoryLimitSource() {
  LimitState &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  initialize(s);
  return s.source;
}

void loom::setMemoryLimit(uint64_t bytes, const std::string &source) {
  LimitState &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.initialized = true;
  s.bytes = bytes;
  s.source = source;
}

ErrorOr<uint64_t> loom::parseByteSize(const std::string &text) {
  auto bad = [&]() -> ErrorOr<uint64_t> {
    return Error{"expected a size in bytes with an optional K, M, G or T "
                 "suffix (0: no limit), got '" +
                 text + "'"};
  };
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = uint64_t(text[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return bad();
    v = v * 10 + d;
    ++i;
  }
  if (i == 0)
    return bad();
  uint64_t unit = 1;
  if (i < text.size()) {
    switch (std::toupper(static_cast<unsigned char>(text[i]))) {
    case 'K':
      unit = uint64_t(1) << 10;
      break;
    case 'M':
      unit = uint64_t(1) << 20;
      break;
    case 'G':
      unit = uint64_t(1) << 30;
      break;
    case 'T':
      unit = uint64_t(1) << 40;
      break;
    default:
      return bad();
    }
    ++i;
    // "16G", "16GB" and "16GiB" alike.
    if (i < text.size() && text.compare(i, std::string::npos, "iB") == 0)
      i += 2;
    else if (i < text.size() && (text[i] == 'B' || text[i] == 'b'))
      ++i;
  }
  if (i != text.size())
    return bad();
  if (v == 0)
    return UINT64_MAX;
  uint64_t r;
  if (__builtin_mul_overflow(v, unit, &r))
    return bad();
  return r;
}

std::string loom::formatBytes(uint64_t bytes) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

Status loom::checkMemory(uint64_t bytes, const std::string &what) {
  uint64_t limit = memoryLimit();
  if (bytes <= limit)
    return Status();
  return Error{what + " needs " +
               (bytes == UINT64_MAX ? std::string("more than 16 EiB")
                                    : formatBytes(bytes)) +
               ", over loom's memory limit of " + formatBytes(limit) + " (" +
               memoryLimitSource() +
               "); raise it with --max-memory SIZE or LOOM_MAX_MEMORY=SIZE "
               "(0: no limit)"};
}
