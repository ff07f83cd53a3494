"""The start-up hook (``grpo_zoo_hook.pth`` -> :mod:`grpo_zoo.zoo.hook`): lazy, idempotent, harmless."""

import json
import shlex
import textwrap
from pathlib import Path

HEAVY_MODULES = ("torch", "rl_zoo3", "gymnasium", "stable_baselines3", "sb3_contrib", "numpy", "optuna", "yaml")


def _hook_pth_dir() -> Path:
    # The site directory the .pth was installed into (plain or editable install)
    import site

    for directory in [*site.getsitepackages(), site.getusersitepackages()]:
        if (Path(directory) / "grpo_zoo_hook.pth").is_file():
            return Path(directory)
    raise AssertionError(f"grpo_zoo_hook.pth not found in {site.getsitepackages()}: is grpo-zoo installed (pip install -e .)?")


def test_pth_installed_and_runs_at_startup(run_cmd):
    _hook_pth_dir()
    run = run_cmd("python -c 'import json, sys; print(json.dumps(sorted(sys.modules)))'").check()
    modules = json.loads(run.stdout)
    assert "grpo_zoo.zoo.hook" in modules
    heavy = [name for name in modules if name.split(".")[0] in HEAVY_MODULES]
    assert heavy == [], f"the start-up hook imported {heavy}"
    assert "grpo_zoo.grpo" not in modules and "grpo_zoo.zoo.register" not in modules


def test_startup_cost(run_cmd):
    # `python -X importtime -c pass`: what grpo-zoo adds to every interpreter start (microseconds)
    run = run_cmd("python -X importtime -c pass").check()
    cost = 0
    for line in run.stderr.splitlines():
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] in ("grpo_zoo", "grpo_zoo.zoo", "grpo_zoo.zoo.hook"):
            cost += int(fields[0])
    assert 0 < cost < 50_000, f"grpo-zoo start-up hook took {cost} us"


def test_algo_choices(run_cmd):
    assert "grpo}" in run_cmd("python -m rl_zoo3.train --help").check().stdout
    # GRPO_ZOO_NO_HOOK=1 turns the hook off (python -m grpo_zoo.train still works, see test_cli_enjoy.py)
    assert "grpo" not in run_cmd("python -m rl_zoo3.train --help", env={"GRPO_ZOO_NO_HOOK": "1"}).check().stdout


def test_idempotent(run_cmd, tmp_path):
    script = textwrap.dedent(
        f"""
        import importlib, site, sys
        from grpo_zoo.zoo import hook

        def n_finders():
            return sum(bool(getattr(finder, "_grpo_zoo_finder", False)) for finder in sys.meta_path)

        # The .pth processed twice more, install() called again, and a reloaded copy of the hook
        site.addsitedir({str(_hook_pth_dir())!r})
        site.addsitedir({str(_hook_pth_dir())!r})
        hook.install()
        importlib.reload(hook)
        hook.install()
        assert n_finders() == 1, n_finders()

        import rl_zoo3.train
        from rl_zoo3.exp_manager import ExperimentManager
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
        from rl_zoo3.utils import ALGOS
        hook.install()  # registers again over the imported modules: must not wrap twice
        import grpo_zoo
        from grpo_zoo.zoo import sampler
        assert ALGOS["grpo"] is grpo_zoo.GRPO
        assert HYPERPARAMS_SAMPLER["grpo"] is sampler.sample_grpo_params
        assert HYPERPARAMS_CONVERTER["grpo"] is sampler.convert_grpo_params
        for method in (ExperimentManager.__init__, ExperimentManager.setup_experiment):
            assert getattr(method, "__grpo_zoo_patched__", False), method
            assert not getattr(method.__wrapped__, "__grpo_zoo_patched__", False), "wrapped twice"
        assert n_finders() == 1
        print("ok")
        """
    )
    run = run_cmd(f"python -W error::RuntimeWarning -c {shlex.quote(script)}", cwd=tmp_path).check()
    assert run.stdout.strip().endswith("ok")


def test_install_after_rl_zoo3_import(run_cmd, tmp_path):
    # python -m grpo_zoo.train path: rl_zoo3 may be imported before install()
    script = textwrap.dedent(
        """
        import rl_zoo3.exp_manager
        from rl_zoo3.utils import ALGOS
        assert "grpo" not in ALGOS
        from grpo_zoo.zoo import hook
        hook.install(force=True)
        assert "grpo" in ALGOS
        from rl_zoo3.exp_manager import ExperimentManager
        assert getattr(ExperimentManager.__init__, "__grpo_zoo_patched__", False)
        print("ok")
        """
    )
    run = run_cmd(f"python -c {shlex.quote(script)}", cwd=tmp_path, env={"GRPO_ZOO_NO_HOOK": "1"}).check()
    assert run.stdout.strip().endswith("ok")


def test_register_grpo_without_the_pth_hook(run_cmd, tmp_path):
    # The one registration grpo-zoo's programs call (tuner, benchmark, python -m grpo_zoo.train): all in place on return
    script = textwrap.dedent(
        """
        from grpo_zoo.zoo.hook import register_grpo
        register_grpo()
        register_grpo()  # idempotent
        import grpo_zoo
        from grpo_zoo.zoo import sampler
        from rl_zoo3.exp_manager import ExperimentManager
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
        from rl_zoo3.utils import ALGOS
        assert ALGOS["grpo"] is grpo_zoo.GRPO and HYPERPARAMS_SAMPLER["grpo"] is sampler.sample_grpo_params
        assert getattr(ExperimentManager.setup_experiment, "__grpo_zoo_patched__", False)
        assert not getattr(ExperimentManager.setup_experiment.__wrapped__, "__grpo_zoo_patched__", False)
        print("ok")
        """
    )
    run = run_cmd(f"python -c {shlex.quote(script)}", cwd=tmp_path, env={"GRPO_ZOO_NO_HOOK": "1"}).check()
    assert run.stdout.strip().endswith("ok")


def test_changed_rl_zoo3_warns_once(run_cmd, tmp_path):
    # An rl_zoo3 whose internals changed: Python keeps running, with one clear warning
    fake = tmp_path / "fake" / "rl_zoo3"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "utils.py").write_text("REGISTRY = {}\n")
    (fake / "hyperparams_opt.py").write_text("SAMPLERS = {}\n")
    (fake / "exp_manager.py").write_text("class ExperimentManager:\n    def __init__(self, settings):\n        pass\n")
    run = run_cmd(
        "python -W default -c 'import rl_zoo3.utils, rl_zoo3.hyperparams_opt, rl_zoo3.exp_manager; print(\"running\")'",
        cwd=tmp_path,
        env={"PYTHONPATH": str(fake.parent)},
    ).check()
    assert run.stdout.strip() == "running"
    assert run.stderr.count("grpo-zoo:") == 1, run.stderr
    assert "could not register GRPO with rl_zoo3" in run.stderr


def test_missing_rl_zoo3_is_untouched(run_cmd, tmp_path):
    # Without rl_zoo3 the finder steps aside: the usual ModuleNotFoundError, no warning of ours
    script = "import sys; sys.path = [p for p in sys.path if 'site-packages' not in p]; import rl_zoo3.utils"
    run = run_cmd(f"python -c {shlex.quote(script)}", cwd=tmp_path)
    assert run.returncode == 1
    assert "ModuleNotFoundError: No module named 'rl_zoo3'" in run.stderr
    assert "grpo-zoo" not in run.stderr


def test_no_rl_zoo3_import_in_algorithm():
    # GRPO must stay usable with plain SB3 (STYLE.md): the rl_zoo3 glue lives in grpo_zoo/zoo/ only
    import grpo_zoo

    package_dir = Path(grpo_zoo.__file__).parent
    core = [*package_dir.glob("grpo/*.py"), *package_dir.glob("groups/*.py")]
    core += [package_dir / "advantages.py", package_dir / "rewards.py"]
    offenders = [path.name for path in core if "import rl_zoo3" in path.read_text() or "from rl_zoo3" in path.read_text()]
    assert offenders == []
