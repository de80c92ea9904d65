//===- TrainSettings.h - a model's training settings ------------*- C++ -*-===//
//
// The settings of a training run (defaults, then the model file's `train`
// line, then overrides such as `loom train`'s flags) and the optimizer they
// configure: its loom-train-step pipeline and the step function's scalar
// arguments for each step. Shared by `loom train` and the embedding API.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_PASSES_TRAINSETTINGS_H
#define LOOM_PASSES_TRAINSETTINGS_H

#include "ir/LoomDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace loom {

/// Exact decimal text of a double.
inline std::string format17(double v) {
  return llvm::formatv("{0}", llvm::format("%.17g", v)).str();
}

/// Training settings: defaults, then the model's `train` line, then flags.
class Settings {
public:
  /// `report` receives the message of every invalid setting read.
  Settings(mlir::func::FuncOp lossFn,
           const std::map<std::string, std::string> &flags,
           std::function<void(const std::string &)> report)
      : report(std::move(report)) {
    values = {{"optimizer", "sgd"},
              {"momentum", "0"},
              {"dampening", "0"},
              {"nesterov", "false"},
              {"weight_decay", "0"},
              {"beta1", "0.9"},
              {"beta2", "0.999"},
              {"eps", "1e-08"},
              {"clip", "0"},
              {"l1", "0"},
              {"lr_schedule", "constant"},
              {"lr_step", "1"},
              {"lr_gamma", "0.1"},
              {"lr_decay", "4"},
              {"bptt", "35"},
              {"batch_size", "20"},
              {"eval_batch_size", "10"},
              {"tokenizer", "char"},
              {"valid_fraction", "0"},
              {"eval_every", "0"}};
    if (auto dict = lossFn->getAttrOfType<mlir::DictionaryAttr>(kTrainAttr))
      for (mlir::NamedAttribute a : dict) {
        std::string v;
        if (auto s = mlir::dyn_cast<mlir::StringAttr>(a.getValue()))
          v = s.str();
        else if (auto f = mlir::dyn_cast<mlir::FloatAttr>(a.getValue()))
          v = format17(f.getValueAsDouble());
        values[a.getName().str()] = v;
        origin[a.getName().str()] =
            "the model's train setting '" + a.getName().str() + "'";
      }
    for (const auto &[k, v] : flags) {
      values[k] = v;
      origin[k] = "--" + dashed(k);
    }
    // Adam-family defaults differ from SGD's learning rate.
    if (!values.count("lr"))
      values["lr"] = values["optimizer"] == "sgd" ? "0.1" : "0.001";
  }

  bool has(const std::string &k) const { return values.count(k); }
  std::string str(const std::string &k) const {
    auto it = values.find(k);
    return it == values.end() ? "" : it->second;
  }
  std::optional<double> num(const std::string &k) const {
    std::string v = str(k);
    char *end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !std::isfinite(d) || d < 0) {
      report(where(k) + " expects a non-negative number, got '" + v + "'");
      return std::nullopt;
    }
    return d;
  }
  std::optional<int64_t> integer(const std::string &k) const {
    auto d = num(k);
    if (!d)
      return std::nullopt;
    if (*d < 1 || *d != std::floor(*d) || *d > 1e12) {
      report(where(k) + " expects a positive integer, got '" + str(k) + "'");
      return std::nullopt;
    }
    return static_cast<int64_t>(*d);
  }
  std::optional<bool> boolean(const std::string &k) const {
    std::string v = str(k);
    if (v == "true" || v == "1")
      return true;
    if (v == "false" || v == "0")
      return false;
    report(where(k) + " expects true or false, got '" + v + "'");
    return std::nullopt;
  }
  /// Where a setting came from, for messages: "--lr" or "the model's
  /// train setting 'lr'".
  std::string where(const std::string &k) const {
    auto it = origin.find(k);
    return it == origin.end() ? "--" + dashed(k) : it->second;
  }

  std::function<void(const std::string &)> report;

private:
  static std::string dashed(std::string k) {
    std::replace(k.begin(), k.end(), '_', '-');
    return k;
  }
  std::map<std::string, std::string> values, origin;
};

/// The optimizer's configuration, read once from the settings.
struct Optim {
  std::string kind;
  double lr = 0, momentum = 0, dampening = 0, weightDecay = 0, beta1 = 0,
         beta2 = 0, eps = 0, clip = 0, l1 = 0;
  bool nesterov = false;

  bool read(const Settings &s) {
    auto report = [&](const std::string &m) { s.report(m); };
    kind = s.str("optimizer");
    if (kind != "sgd" && kind != "adam" && kind != "adamw") {
      report(s.where("optimizer") + " must be sgd, adam or adamw, got '" +
             kind + "'");
      return false;
    }
    auto get = [&](const char *k, double &out) {
      auto v = s.num(k);
      if (v)
        out = *v;
      return v.has_value();
    };
    auto nest = s.boolean("nesterov");
    if (!nest || !get("lr", lr) || !get("momentum", momentum) ||
        !get("dampening", dampening) || !get("weight_decay", weightDecay) ||
        !get("beta1", beta1) || !get("beta2", beta2) || !get("eps", eps) ||
        !get("clip", clip) || !get("l1", l1))
      return false;
    nesterov = *nest;
    if (beta1 >= 1 || beta2 >= 1) {
      report("beta1 and beta2 must be below 1");
      return false;
    }
    if (nesterov && (momentum <= 0 || dampening != 0)) {
      report("Nesterov momentum requires a momentum and zero dampening (as in "
             "torch.optim.SGD)");
      return false;
    }
    return true;
  }

  std::string pipeline() const {
    auto b = [](bool v) { return v ? "true" : "false"; };
    return std::string(kGradientPipeline) +
           ",loom-train-step{optimizer=" + kind +
           " momentum=" + b(kind == "sgd" && momentum > 0) +
           " nesterov=" + b(nesterov) + " weight-decay=" + b(weightDecay > 0) +
           " clip=" + b(clip > 0) + " l1=" + b(l1 > 0) + "}";
  }

  /// The step function's scalar arguments for optimizer step `t` (0-based)
  /// at learning rate `rate`, computed in double as PyTorch does.
  std::map<std::string, float> scalars(int64_t t, double rate) const {
    std::map<std::string, float> m;
    m["lr"] = float(rate);
    m["weight_decay"] = float(weightDecay);
    m["max_norm"] = float(clip);
    m["l1"] = float(l1);
    if (kind == "sgd") {
      m["momentum"] = float(momentum);
      m["momentum_decay"] = t == 0 ? 0.0f : float(momentum);
      m["momentum_scale"] = t == 0 ? 1.0f : float(1.0 - dampening);
      return m;
    }
    double n = double(t + 1);
    m["beta1"] = float(beta1);
    m["beta2"] = float(beta2);
    m["one_minus_beta1"] = float(1.0 - beta1);
    m["one_minus_beta2"] = float(1.0 - beta2);
    m["eps"] = float(eps);
    m["step_size"] = float(rate / (1.0 - std::pow(beta1, n)));
    m["bias_correction2_sqrt"] = float(std::sqrt(1.0 - std::pow(beta2, n)));
    m["decay"] = float(1.0 - rate * weightDecay);
    return m;
  }
};

} // namespace loom

#endif // LOOM_PASSES_TRAINSETTINGS_H
