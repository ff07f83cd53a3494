"""
The zoo wing's layers: every module imports alone in a fresh interpreter, and imports point down.

    grpo_zoo.tune, grpo_zoo.{train,enjoy,record_video,record_training,cli}    commands
    grpo_zoo.tuning.*                                                         the tuner (uses grpo_zoo.zoo)
    grpo_zoo.zoo.{patches,register,studies,sampler,budget,ffmpeg,hook,run}    rl-zoo3 integration
    grpo_zoo.schedules, grpo_zoo.groups.modes                                 the zoo's lin_ strings, the group modes
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "grpo_zoo"
MODULES = [
    "grpo_zoo.schedules",
    "grpo_zoo.groups.modes",
    *(f"grpo_zoo.zoo.{path.stem}" for path in sorted((PACKAGE_DIR / "zoo").glob("*.py")) if path.stem != "__init__"),
    *(f"grpo_zoo.tuning.{path.stem}" for path in sorted((PACKAGE_DIR / "tuning").glob("*.py")) if path.stem != "__init__"),
    "grpo_zoo.tune",
    "grpo_zoo.train",
    "grpo_zoo.enjoy",
    "grpo_zoo.record_video",
    "grpo_zoo.record_training",
    "grpo_zoo.cli",
]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module):
    # A fresh interpreter without the start-up hook's finder: nothing imported before the module itself
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env={**os.environ, "GRPO_ZOO_NO_HOOK": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_zoo_never_imports_the_tuner():
    offenders = {
        path.name: sorted(name for name in _imports(path) if name.startswith(("grpo_zoo.tuning", "grpo_zoo.tune")))
        for path in (PACKAGE_DIR / "zoo").glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


# What the search space may import of grpo_zoo: the zoo's schedule strings and the table of group modes
SAMPLER_IMPORTS = ("grpo_zoo.schedules", "grpo_zoo.groups.modes")


def test_sampler_is_a_search_space_only():
    # No rl_zoo3, no ExperimentManager patch: grpo_zoo.zoo.patches wraps the zoo and calls the sampler
    imports = _imports(PACKAGE_DIR / "zoo" / "sampler.py")
    assert not [name for name in imports if name.startswith("rl_zoo3")]
    assert [name for name in imports if name.startswith("grpo_zoo") and not name.startswith(SAMPLER_IMPORTS)] == []


def test_sampler_and_group_modes_do_not_import_torch():
    # The sampler reads which arguments each group mode takes from grpo_zoo.groups.modes, not from the registry
    # (which imports the collectors, hence torch)
    code = "import sys, grpo_zoo.zoo.sampler; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "GRPO_ZOO_NO_HOOK": "1"}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The table itself: standard library only
    assert {name.split(".")[0] for name in _imports(PACKAGE_DIR / "groups" / "modes.py")} <= {
        "collections",
        "dataclasses",
        "typing",
    }
