//===- Schedule.cpp - Learning-rate schedules -----------------------------===//

#include "runtime/Schedule.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

using namespace loom;

static const char kPrefix[] = "learning rate schedule: ";

const char *loom::scheduleKindName(LrSchedule::Kind kind) {
  switch (kind) {
  case LrSchedule::Constant:
    return "constant";
  case LrSchedule::Step:
    return "step";
  case LrSchedule::Plateau:
    return "plateau";
  }
  return "?";
}

ErrorOr<LrSchedule::Kind> loom::parseScheduleKind(const std::string &name) {
  for (LrSchedule::Kind kind :
       {LrSchedule::Constant, LrSchedule::Step, LrSchedule::Plateau})
    if (name == scheduleKindName(kind))
      return kind;
  return Error{"unknown learning rate schedule '" + name +
               "' (expected 'constant', 'step' or 'plateau')"};
}

LrSchedule LrSchedule::constant(double lr) {
  LrSchedule s;
  s.kind = Constant;
  s.initialLr = s.currentLr = lr;
  return s;
}

LrSchedule LrSchedule::step(double lr, int64_t stepSize, double gamma) {
  LrSchedule s = constant(lr);
  s.kind = Step;
  s.stepSize = stepSize;
  s.gamma = gamma;
  return s;
}

LrSchedule LrSchedule::plateau(double lr, double factor) {
  LrSchedule s = constant(lr);
  s.kind = Plateau;
  s.factor = factor;
  return s;
}

static std::string formatDouble(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

static bool isPositive(double value) {
  return std::isfinite(value) && value > 0;
}

/// Checks the configuration (not the state).
static Status checkConfiguration(const LrSchedule &s) {
  if (!isPositive(s.initialLr))
    return Error{std::string(kPrefix) +
                 "the learning rate must be positive and finite, got " +
                 formatDouble(s.initialLr)};
  if (s.stepSize < 1)
    return Error{std::string(kPrefix) +
                 "the step size must be at least 1, got " +
                 std::to_string(s.stepSize)};
  if (!isPositive(s.gamma))
    return Error{std::string(kPrefix) +
                 "gamma must be positive and finite, got " +
                 formatDouble(s.gamma)};
  if (!isPositive(s.factor))
    return Error{std::string(kPrefix) +
                 "the plateau factor must be positive and finite, got " +
                 formatDouble(s.factor)};
  return Status::success();
}

ErrorOr<LrSchedule> LrSchedule::create(Kind kind, double lr, int64_t stepSize,
                                       double gamma, double factor) {
  LrSchedule s = constant(lr);
  s.kind = kind;
  s.stepSize = stepSize;
  s.gamma = gamma;
  s.factor = factor;
  if (Status status = checkConfiguration(s); !status)
    return Error{status.error()};
  return s;
}

void LrSchedule::onStep(int64_t stepsDone) {
  if (kind != Step || stepSize < 1 || stepsDone < 0)
    return;
  int64_t target = stepsDone / stepSize;
  if (target < decays) {
    // Going back: replay from the start, which gives the same values the
    // forward path did.
    currentLr = initialLr;
    decays = 0;
  }
  for (; decays < target; ++decays)
    currentLr *= gamma;
}

void LrSchedule::onValidation(double loss) {
  if (kind != Plateau)
    return;
  if (!hasBest || bestLoss == 0.0 || loss < bestLoss) {
    hasBest = true;
    bestLoss = loss;
  } else {
    currentLr /= factor;
  }
}

std::map<std::string, std::string> LrSchedule::save() const {
  std::map<std::string, std::string> out;
  out["lr_schedule.kind"] = scheduleKindName(kind);
  out["lr_schedule.initial_lr"] = formatDouble(initialLr);
  out["lr_schedule.lr"] = formatDouble(currentLr);
  if (kind == Step) {
    out["lr_schedule.step_size"] = std::to_string(stepSize);
    out["lr_schedule.gamma"] = formatDouble(gamma);
    out["lr_schedule.decays"] = std::to_string(decays);
  }
  if (kind == Plateau) {
    out["lr_schedule.factor"] = formatDouble(factor);
    out["lr_schedule.best_loss"] = hasBest ? formatDouble(bestLoss) : "none";
  }
  return out;
}

namespace {

/// Reads keys of a metadata map, reporting the first problem.
class MetadataReader {
public:
  explicit MetadataReader(const std::map<std::string, std::string> &metadata)
      : metadata(metadata) {}

  const std::string *get(const std::string &key) {
    auto it = metadata.find(key);
    if (it != metadata.end())
      return &it->second;
    fail("missing key '" + key + "'");
    return nullptr;
  }

  void readDouble(const std::string &key, double &out) {
    const std::string *text = get(key);
    if (!text)
      return;
    const char *begin = text->c_str();
    char *end = nullptr;
    errno = 0;
    double value = std::strtod(begin, &end);
    // ERANGE on underflow still yields the nearest value; only overflow to
    // infinity is out of range, and isPositive rejects it where it matters.
    if (text->empty() || end != begin + text->size() ||
        std::isspace(static_cast<unsigned char>((*text)[0])))
      return fail("'" + key + "' is not a number: \"" + *text + "\"");
    out = value;
  }

  void readInt(const std::string &key, int64_t &out) {
    const std::string *text = get(key);
    if (!text)
      return;
    const char *begin = text->c_str();
    char *end = nullptr;
    errno = 0;
    long long value = std::strtoll(begin, &end, 10);
    if (text->empty() || end != begin + text->size() || errno == ERANGE ||
        std::isspace(static_cast<unsigned char>((*text)[0])))
      return fail("'" + key + "' is not an integer: \"" + *text + "\"");
    out = value;
  }

  void fail(const std::string &what) {
    if (!error)
      error = Error{std::string(kPrefix) + what};
  }

  std::optional<Error> error;

private:
  const std::map<std::string, std::string> &metadata;
};

} // namespace

Status LrSchedule::restore(const std::map<std::string, std::string> &metadata) {
  MetadataReader reader(metadata);
  LrSchedule s;
  const std::string *kindName = reader.get("lr_schedule.kind");
  if (!kindName)
    return std::move(*reader.error);
  ErrorOr<Kind> parsedKind = parseScheduleKind(*kindName);
  if (!parsedKind)
    return Error{std::string(kPrefix) +
                 "'lr_schedule.kind': " + parsedKind.error()};
  s.kind = *parsedKind;
  reader.readDouble("lr_schedule.initial_lr", s.initialLr);
  reader.readDouble("lr_schedule.lr", s.currentLr);
  if (s.kind == Step) {
    reader.readInt("lr_schedule.step_size", s.stepSize);
    reader.readDouble("lr_schedule.gamma", s.gamma);
    reader.readInt("lr_schedule.decays", s.decays);
  }
  if (s.kind == Plateau) {
    reader.readDouble("lr_schedule.factor", s.factor);
    if (const std::string *best = reader.get("lr_schedule.best_loss")) {
      if (*best == "none") {
        s.hasBest = false;
      } else {
        s.hasBest = true;
        reader.readDouble("lr_schedule.best_loss", s.bestLoss);
      }
    }
  }
  if (reader.error)
    return std::move(*reader.error);
  if (Status status = checkConfiguration(s); !status)
    return status;
  if (!isPositive(s.currentLr))
    return Error{std::string(kPrefix) +
                 "'lr_schedule.lr' must be positive and finite, got " +
                 formatDouble(s.currentLr)};
  if (s.decays < 0)
    return Error{std::string(kPrefix) +
                 "'lr_schedule.decays' must not be negative, got " +
                 std::to_string(s.decays)};
  *this = s;
  return Status::success();
}
