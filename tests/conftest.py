import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

# Set before any test runs, inherited by every zoo command the tests start:
# one thread per process (2 shared cores), headless rendering and plotting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
# rl_zoo3.record_training runs `python -m rl_zoo3.record_video`: `python` must be this interpreter
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

REPO_ROOT = Path(__file__).resolve().parent.parent


def _assert_eq(left, right):
    assert left == right, f"{left} != {right}"


class ZooRun:
    """Result of one zoo command run in a subprocess."""

    def __init__(self, cmd: str, completed: subprocess.CompletedProcess) -> None:
        self.cmd = cmd
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    def check(self, returncode: int = 0) -> "ZooRun":
        assert self.returncode == returncode, (
            f"`{self.cmd}` exited {self.returncode}, expected {returncode}\n"
            f"--- stdout (end)\n{self.stdout[-3000:]}\n--- stderr (end)\n{self.stderr[-6000:]}"
        )
        return self


def run_cmd(cmd: str, cwd: Path | str | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> ZooRun:
    """
    Run ``cmd`` (a shell-like string whose first word is ``python``) with this interpreter.

    :param cmd: e.g. ``"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n 300"``
    :param cwd: working directory
    :param env: extra environment variables
    :param timeout: seconds
    :return: the finished run (call ``.check()`` to assert its return code)
    """
    args = shlex.split(cmd)
    if args[0] == "python":
        args[0] = sys.executable
    full_env = {**os.environ, **(env or {})}
    completed = subprocess.run(
        args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    return ZooRun(cmd, completed)


@pytest.fixture(scope="session")
def cartpole_run(tmp_path_factory):
    """
    One GRPO run on CartPole-v1 (hyperparams/grpo.yml entry, time bins) shared by the enjoy, video and plot
    tests: seed, evaluations, checkpoints, tensorboard and progress bar in one go.

    :return: (log folder, experiment folder, the run)
    """
    root = tmp_path_factory.mktemp("cartpole")
    log_folder = root / "logs"
    run = run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n 512 --seed 0 --eval-freq 128 --eval-episodes 2 "
        f"--save-freq 256 -f {log_folder} -tb {root / 'tb'} -P",
        cwd=root,
    ).check()
    return log_folder, log_folder / "grpo" / "CartPole-v1_1", run


@pytest.fixture(name="run_cmd", scope="session")
def run_cmd_fixture():
    """:return: :func:`run_cmd`, to run a zoo command in a subprocess"""
    return run_cmd
