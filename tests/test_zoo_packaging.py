"""Both install modes ship what the zoo needs: the .pth hook, hyperparams/grpo.yml and the reward_fns package."""

import json
import os
import shlex
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Run in the new environment, from a folder outside the checkout
CHECK_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys
    import yaml
    import grpo_zoo, reward_fns
    from grpo_zoo.zoo.register import grpo_hyperparams_path
    hook_at_startup = "grpo_zoo.zoo.hook" in sys.modules
    with open(grpo_hyperparams_path()) as file:
        path = yaml.safe_load(file)["MountainCar-v0"]["reward_function"]
    module_name, function_name = path.split(":")
    reward = getattr(importlib.import_module(module_name), function_name)
    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.utils import ALGOS
    manager = ExperimentManager(None, "grpo", "CartPole-v1", "logs")
    print(json.dumps({
        "hook_at_startup": hook_at_startup,
        "grpo_registered": ALGOS.get("grpo") is grpo_zoo.GRPO,
        "grpo_zoo": grpo_zoo.__file__,
        "reward_fns": reward_fns.__file__,
        "hyperparams": str(grpo_hyperparams_path()),
        "config": manager.config,
        "reward": reward.__module__,
    }))
    """
)


def _build(kind: str, out_dir: Path) -> Path:
    # PEP 517 hooks of hatchling, as pip calls them (`pip install .` / `pip install -e .`)
    hook = {"wheel": "build_wheel", "editable": "build_editable"}[kind]
    code = f"import hatchling.build as backend; print(backend.{hook}({str(out_dir)!r}))"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    return out_dir / completed.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    # One folder each: both wheels are named grpo_zoo-<version>-py3-none-any.whl
    return {kind: _build(kind, tmp_path_factory.mktemp(kind)) for kind in ("wheel", "editable")}


def test_wheel_contents(wheels):
    names = set(zipfile.ZipFile(wheels["wheel"]).namelist())
    for name in (
        "grpo_zoo_hook.pth",
        "grpo_zoo/__init__.py",
        "grpo_zoo/version.txt",
        "grpo_zoo/py.typed",
        "grpo_zoo/zoo/hook.py",
        "grpo_zoo/hyperparams/grpo.yml",
        "reward_fns/__init__.py",
        "reward_fns/cartpole.py",
    ):
        assert name in names, name
    assert not any(name.startswith(("tests/", "hyperparams/")) for name in names)
    pth = zipfile.ZipFile(wheels["wheel"]).read("grpo_zoo_hook.pth").decode()
    assert pth.startswith("import ") and len(pth.strip().splitlines()) == 1


def test_editable_wheel_contents(wheels):
    archive = zipfile.ZipFile(wheels["editable"])
    names = set(archive.namelist())
    assert "grpo_zoo_hook.pth" in names
    # The path .pth must sort before the hook so that grpo_zoo is importable when the hook line runs
    path_pths = sorted(name for name in names if name.endswith(".pth") and name != "grpo_zoo_hook.pth")
    assert path_pths and all(name < "grpo_zoo_hook.pth" for name in path_pths)
    assert str(REPO_ROOT) in archive.read(path_pths[0]).decode()
    # No copy of hyperparams/ that would go stale
    assert not any("hyperparams" in name for name in names)


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_install_mode(wheels, kind, tmp_path):
    # A new venv whose site-packages holds only this wheel; this environment's site-packages come after it
    # as plain path entries (so their .pth files, an editable grpo-zoo included, are not processed).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    new_site = Path(
        subprocess.run(
            [python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (new_site / "00_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet"]
    completed = subprocess.run([*install, str(wheels[kind])], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert (new_site / "grpo_zoo_hook.pth").is_file()

    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [str(python), "-c", CHECK_SCRIPT], cwd=run_dir, capture_output=True, text=True, env=env, check=False
    )
    assert completed.returncode == 0, f"{shlex.join([str(python), '-c', '...'])}\n{completed.stderr}"
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["hook_at_startup"]
    assert result["grpo_registered"]
    assert result["reward"] == "reward_fns.mountain_car"
    assert result["config"] == result["hyperparams"]
    if kind == "wheel":
        assert result["grpo_zoo"].startswith(str(new_site))
        assert result["reward_fns"].startswith(str(new_site))
        assert result["hyperparams"] == str(new_site / "grpo_zoo" / "hyperparams" / "grpo.yml")
    else:
        assert result["grpo_zoo"] == str(REPO_ROOT / "grpo_zoo" / "__init__.py")
        assert result["reward_fns"] == str(REPO_ROOT / "reward_fns" / "__init__.py")
        assert result["hyperparams"] == str(REPO_ROOT / "hyperparams" / "grpo.yml")
