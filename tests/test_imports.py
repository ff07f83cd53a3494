"""Every import points down: each module of grpo_zoo imports on its own, first, in a fresh interpreter."""

import pkgutil
import subprocess
import sys

import grpo_zoo

MODULES = sorted(info.name for info in pkgutil.walk_packages(grpo_zoo.__path__, "grpo_zoo."))

# One interpreter for speed: third-party packages stay loaded, every grpo_zoo module is forgotten before the next
# import, so each one is imported first (an import cycle among grpo_zoo modules raises ImportError then)
SCRIPT = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "grpo_zoo" or m.startswith("grpo_zoo.") or m == "reward_fns"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first():
    assert "grpo_zoo.groups.state" in MODULES and "grpo_zoo.grpo.grpo" in MODULES
    process = subprocess.run([sys.executable, "-c", SCRIPT, *MODULES], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr
