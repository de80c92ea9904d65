//===- npy-allclose.cpp - compare .npy files within a tolerance -------===//
//
// Test helper: `npy-allclose EXPECTED ACTUAL [--rtol R] [--atol A]` where
// both are .npy files, both .safetensors files (every expected tensor by
// name), or both directories (every EXPECTED/*.npy and *.safetensors must
// have a match in ACTUAL). Passes when |a - e| <= atol + rtol * |e| everywhere,
// as numpy.allclose; prints the worst element and exits 1 otherwise.
//
//===----------------------------------------------------------------------===//

#include "runtime/Npy.h"
#include "runtime/SafeTensors.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace loom;

static bool isDir(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static bool compareTensors(const std::string &a, const Tensor *exp,
                           const Tensor *act, double rtol, double atol);

/// Every tensor of the expected .safetensors file against the tensor of the
/// same name in the actual one.
static bool compareSafeTensors(const std::string &e, const std::string &a,
                               double rtol, double atol) {
  auto exp = readSafeTensors(e);
  auto act = readSafeTensors(a);
  if (!exp || !act) {
    std::fprintf(stderr, "%s\n", (!exp ? exp.error() : act.error()).c_str());
    return false;
  }
  bool ok = true;
  for (const auto &[name, t] : exp->tensors) {
    const Tensor *other = act->find(name);
    if (!other) {
      std::printf("%s: missing tensor '%s'  MISMATCH\n", a.c_str(),
                  name.c_str());
      ok = false;
      continue;
    }
    ok &= compareTensors(a + ":" + name, &t, other, rtol, atol);
  }
  return ok;
}

static bool compare(const std::string &e, const std::string &a, double rtol,
                    double atol) {
  if (e.size() > 12 && e.substr(e.size() - 12) == ".safetensors")
    return compareSafeTensors(e, a, rtol, atol);
  auto exp = readNpy(e);
  auto act = readNpy(a);
  if (!exp || !act) {
    std::fprintf(stderr, "%s\n", (!exp ? exp.error() : act.error()).c_str());
    return false;
  }
  return compareTensors(a, &*exp, &*act, rtol, atol);
}

static bool compareTensors(const std::string &a, const Tensor *exp,
                           const Tensor *act, double rtol, double atol) {
  if (exp->shape != act->shape) {
    std::fprintf(stderr, "%s: shape %s, expected %s\n", a.c_str(),
                 act->shapeString().c_str(), exp->shapeString().c_str());
    return false;
  }
  auto ev = toF32Values(*exp);
  auto av = toF32Values(*act);
  if (!ev || !av) {
    std::fprintf(stderr, "%s: not a float array\n", a.c_str());
    return false;
  }
  double worst = 0, worstAbs = 0;
  size_t worstAt = 0;
  bool ok = true;
  for (size_t i = 0; i < ev->size(); ++i) {
    double x = (*av)[i], y = (*ev)[i];
    double err = std::fabs(x - y);
    double ratio = err / (atol + rtol * std::fabs(y));
    if (std::isnan(x) != std::isnan(y))
      ratio = INFINITY;
    if (ratio > worst) {
      worst = ratio;
      worstAt = i;
    }
    worstAbs = std::max(worstAbs, err);
    if (ratio > 1)
      ok = false;
  }
  std::printf("%s: max abs error %.3g (%.3g of tolerance)%s\n", a.c_str(),
              worstAbs, worst, ok ? "" : "  MISMATCH");
  if (!ok)
    std::printf("  worst at flat index %zu: got %.9g, expected %.9g\n", worstAt,
                (*av)[worstAt], (*ev)[worstAt]);
  return ok;
}

int main(int argc, char **argv) {
  double rtol = 1e-4, atol = 1e-5;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rtol") && i + 1 < argc)
      rtol = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--atol") && i + 1 < argc)
      atol = std::atof(argv[++i]);
    else
      paths.push_back(argv[i]);
  }
  if (paths.size() != 2) {
    std::fprintf(stderr, "usage: npy-allclose EXPECTED ACTUAL [--rtol R] "
                         "[--atol A]\n");
    return 2;
  }
  if (!isDir(paths[0]))
    return compare(paths[0], paths[1], rtol, atol) ? 0 : 1;
  DIR *d = opendir(paths[0].c_str());
  bool ok = true;
  int count = 0;
  while (struct dirent *ent = readdir(d)) {
    std::string name = ent->d_name;
    bool npy = name.size() > 4 && name.substr(name.size() - 4) == ".npy";
    bool st =
        name.size() > 12 && name.substr(name.size() - 12) == ".safetensors";
    if (!npy && !st)
      continue;
    ++count;
    ok &= compare(paths[0] + "/" + name, paths[1] + "/" + name, rtol, atol);
  }
  closedir(d);
  if (count == 0) {
    std::fprintf(stderr, "%s: no .npy files\n", paths[0].c_str());
    return 1;
  }
  return ok ? 0 : 1;
}
