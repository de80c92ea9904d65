# lit configuration for loom: FileCheck tests of the dialect, passes, lowering and CLI.
import os
import platform
import lit.formats

config.name = "loom"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".loom", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py", "golden", "unit", "tools"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.loom_obj_root, "tests")

config.environment["PATH"] = os.pathsep.join(
    [config.loom_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
config.substitutions.append(("%loom_src", config.loom_src_root))
config.substitutions.append(("%golden", os.path.join(config.loom_src_root, "tests", "golden")))
config.substitutions.append(("%examples", os.path.join(config.loom_src_root, "examples")))

# Host CPU features, for tests that check vectorized code for the machine they run on.
try:
    with open("/proc/cpuinfo") as f:
        flags = next((l for l in f if l.startswith("flags")), "")
    if " avx512f" in flags:
        config.available_features.add("host-avx512")
    if " avx2" in flags:
        config.available_features.add("host-avx2")
except OSError:
    pass
if platform.machine() in ("x86_64", "AMD64"):
    config.available_features.add("x86")
