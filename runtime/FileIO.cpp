//===- FileIO.cpp - Whole-file reads and atomic writes --------------------===//
//
// Implemented on C stdio so the library needs nothing beyond the standard
// library; fsync is used where POSIX provides it.
//
//===----------------------------------------------------------------------===//

#include "runtime/FileIO.h"

#include "runtime/Limits.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define LOOM_HAVE_FSYNC 1
#endif

using namespace loom;

static std::string errnoMessage(int err) {
  return std::generic_category().message(err);
}

ErrorOr<std::vector<uint8_t>> loom::readFileBytes(const std::string &path) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Error{path + ": cannot open: " + errnoMessage(errno)};
  // A file over the memory limit is refused before it is read; the size
  // of a regular file also sizes the buffer. Reading still goes in chunks
  // rather than trusting that size (pipes have none, and writers race), so
  // the limit is checked again as the bytes arrive.
  uint64_t limit = memoryLimit();
  auto tooLarge = [&](uint64_t size, bool exact) {
    std::fclose(f);
    Status st = checkMemory(size, exact ? "reading the whole file"
                                        : "reading the whole file (at least)");
    return Error{path + ": " + st.error()};
  };
  std::error_code ec;
  std::filesystem::path fsPath(path);
  std::vector<uint8_t> bytes;
  if (std::filesystem::is_regular_file(fsPath, ec)) {
    uintmax_t size = std::filesystem::file_size(fsPath, ec);
    if (!ec && size > limit)
      return tooLarge(uint64_t(size), true);
    if (!ec)
      bytes.reserve(size_t(size));
  }
  uint8_t buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
    if (bytes.size() + n > limit)
      return tooLarge(uint64_t(bytes.size() + n), false);
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  int err = std::ferror(f) ? errno : 0;
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed)
    return Error{path + ": cannot read: " + errnoMessage(err)};
  return bytes;
}

static std::string temporaryName(const std::string &path) {
  static const char digits[] = "0123456789abcdef";
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device());
  std::string name = path + ".tmp-";
  for (int i = 0; i < 12; ++i)
    name += digits[rng() % 16];
  return name;
}

Status loom::writeFileAtomic(const std::string &path,
                             const std::vector<ByteRange> &chunks) {
  // "x" (C11) refuses to open an existing file, so a name collision with
  // another writer's temporary file is detected and retried.
  std::string tmp;
  std::FILE *f = nullptr;
  int err = 0;
  for (int attempt = 0; attempt < 16 && !f; ++attempt) {
    tmp = temporaryName(path);
    f = std::fopen(tmp.c_str(), "wbx");
    err = errno;
    if (!f && err != EEXIST)
      break;
  }
  if (!f)
    return Error{path + ": cannot create temporary file '" + tmp +
                 "': " + errnoMessage(err)};

  // Takes errno as the first argument so that it is read before anything
  // else can clobber it.
  auto fail = [&](int e, const char *what) -> Status {
    if (f)
      std::fclose(f);
    std::remove(tmp.c_str());
    return Error{path + ": cannot " + what + " temporary file '" + tmp +
                 "': " + errnoMessage(e)};
  };

  for (const ByteRange &chunk : chunks)
    if (chunk.size && std::fwrite(chunk.data, 1, chunk.size, f) != chunk.size)
      return fail(errno, "write");
  if (std::fflush(f) != 0)
    return fail(errno, "write");
#ifdef LOOM_HAVE_FSYNC
  // Without this a crash after the rename could expose an empty file.
  if (::fsync(fileno(f)) != 0)
    return fail(errno, "sync");
#endif
  int closeResult = std::fclose(f);
  f = nullptr;
  if (closeResult != 0)
    return fail(errno, "write");
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(errno, "rename");
  return Status::success();
}
