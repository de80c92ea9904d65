//===- Status.h - Value-or-error results without exceptions -----*- C++ -*-===//
//
// ErrorOr<T> and Status carry either a result or a human-readable error
// message. loom links with LLVM, which builds without exceptions, so every
// fallible runtime function reports failure through these types instead.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_STATUS_H
#define LOOM_RUNTIME_STATUS_H

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace loom {

/// An error message on its way into an ErrorOr or a Status. A distinct type
/// lets `return Error{"..."};` work for every result type, including
/// ErrorOr<std::string>, without ambiguity.
struct Error {
  std::string message;
};

/// The result of an operation that produces nothing but may fail.
class [[nodiscard]] Status {
public:
  /// Success.
  Status() = default;
  Status(Error e) : failed(true), message(std::move(e.message)) {}

  static Status success() { return Status(); }

  bool ok() const { return !failed; }
  explicit operator bool() const { return ok(); }
  /// The error message; empty on success.
  const std::string &error() const { return message; }

private:
  bool failed = false;
  std::string message;
};

/// Either a T or an error message.
template <typename T> class [[nodiscard]] ErrorOr {
public:
  // Separate lvalue and rvalue overloads (rather than one by-value
  // constructor) so that `return localVector;` moves instead of copying.
  ErrorOr(const T &v) : value(v) {}
  ErrorOr(T &&v) : value(std::move(v)) {}
  ErrorOr(Error e) : message(std::move(e.message)) {}

  bool ok() const { return value.has_value(); }
  explicit operator bool() const { return ok(); }

  /// The error message; empty on success.
  const std::string &error() const { return message; }

  T &operator*() {
    assert(ok() && "dereferencing a failed ErrorOr");
    return *value;
  }
  const T &operator*() const {
    assert(ok() && "dereferencing a failed ErrorOr");
    return *value;
  }
  T *operator->() { return &**this; }
  const T *operator->() const { return &**this; }

  /// Moves the value out; the ErrorOr must not be dereferenced afterwards.
  T take() {
    assert(ok() && "taking from a failed ErrorOr");
    return std::move(*value);
  }

private:
  std::optional<T> value;
  std::string message;
};

} // namespace loom

#endif // LOOM_RUNTIME_STATUS_H
