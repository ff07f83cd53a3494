"""
Which envs of the zoo's PPO train with ``--algo grpo``: for every env of rl-zoo3's ``hyperparams/ppo.yml`` (its
``atari:`` family by two games), the grpo.yml entry the zoo picks for it, that entry's group mechanism, and whether
``python -m rl_zoo3.train --algo grpo --env ENV -n 256`` trains and saves a model. Prints a markdown table::

    python -m grpo_zoo.benchmarking.coverage                   # every env (a few minutes)
    python -m grpo_zoo.benchmarking.coverage --envs CarRacing-v3 Ant-v4

A smoke test, not a benchmark: ``-n`` real steps (one rollout at least) of each entry as it is, no evaluation.
Envs that are not registered (their package is not installed) get a row saying which package provides them. MuJoCo
ids of ppo.yml older than -v5 run as the -v5 env, the version grpo.yml has entries for: gymnasium 1.x still registers
-v4 (deprecated) and has moved -v2/-v3 (mujoco-py) to gymnasium-robotics.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import yaml

from grpo_zoo.groups.modes import DEFAULT_GROUP_MODE
from grpo_zoo.zoo.register import grpo_hyperparams_path

# The zoo's `atari:` family, by the games of its documentation
ATARI_GAMES = ("PongNoFrameskip-v4", "BreakoutNoFrameskip-v4")
# Envs that grpo.yml has an entry for but the zoo's ppo.yml has not
EXTRA_ENVS = ("Pusher-v5",)
# Where the envs of a family come from, for the rows of envs that are not registered
PACKAGES = {
    "Bullet": 'pybullet_envs_gymnasium (pip install ".[pybullet]")',
    "MiniGrid": 'minigrid (pip install ".[minigrid]")',
    "NoFrameskip": 'ale-py (pip install ".[atari]")',
}


@dataclass
class Row:
    """One line of the table."""

    ppo_env: str  # as the zoo's ppo.yml names it
    env_id: str  # the env trained ("" when none)
    entry: str = ""  # the grpo.yml key the zoo picks
    group_mode: str = ""
    trains: str = ""  # "yes (N s)", "no: <last error line>" or why it was not run


def ppo_envs() -> list[str]:
    """The env ids of the zoo's ppo.yml, in its order, with its `atari:` family as :data:`ATARI_GAMES`."""
    import rl_zoo3

    with open(Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml") as file:
        keys = list(yaml.safe_load(file))
    envs: list[str] = []
    for key in keys:
        if key == "atari":
            envs.extend(ATARI_GAMES)
        elif key != "default":
            envs.append(key)
    return envs


def env_to_run(env_id: str) -> tuple[str, str]:
    """
    :return: the registered env to train for ``env_id`` ("" if none) and a note (a MuJoCo version mapped, or which
        package provides an env that is not registered)
    """
    name, _, version = env_id.rpartition("-v")
    if env_id in gym.registry:
        entry_point = str(gym.registry[env_id].entry_point)
        newest = f"{name}-v5"
        # -v4: gymnasium.envs.mujoco.*_v4 (deprecated); -v2/-v3: a function that raises mujoco-py's ImportError
        if "mujoco" in entry_point and version.isdigit() and int(version) < 5 and newest in gym.registry:
            why = "deprecated" if "gymnasium.envs.mujoco" in entry_point else "mujoco-py, not installable"
            return newest, f"ppo.yml's -v{version} ({why}) run as -v5"
        return env_id, ""
    package = next((package for marker, package in PACKAGES.items() if marker in env_id), "its package")
    if "Bullet" in env_id and "pybullet_envs_gymnasium" in sys.modules:
        return "", "not registered by the installed pybullet_envs_gymnasium"
    return "", f"not installed: {package}"


def entry_for(env_id: str, entries: dict) -> str:
    """The grpo.yml key the zoo picks for ``env_id`` (``rl_zoo3.exp_manager.ExperimentManager.read_hyperparameters``)."""
    if env_id in entries:
        return env_id
    if "AtariEnv" in str(gym.registry[env_id].entry_point):
        return "atari"
    return "default" if "default" in entries else ""


def train(env_id: str, n_timesteps: int, log_folder: str) -> str:
    """Run the zoo's train; "yes (N s)" when it saved a model, else "no: " and the last line of its stderr."""
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "grpo", "--env", env_id, "-n", str(n_timesteps)]
    command += ["-f", log_folder, "--eval-freq", "-1", "--seed", "0"]
    start = time.time()
    run = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdin=subprocess.DEVNULL
    )
    seconds = time.time() - start
    saved = any(Path(log_folder, "grpo").glob(f"{env_id}_*/{env_id}.zip"))
    if run.returncode == 0 and saved:
        return f"yes ({seconds:.0f} s)"
    lines = run.stderr.strip().splitlines() or [f"exit code {run.returncode}"]
    return f"no: {lines[-1][:200]}"


def coverage(envs: list[str], n_timesteps: int) -> list[Row]:
    """One row per env: the entry, its group mode, and whether it trains (run in a throw-away log folder)."""
    import rl_zoo3.import_envs  # noqa: F401  (registers the env packages the zoo knows: ale-py, minigrid, ...)

    with open(grpo_hyperparams_path()) as file:
        entries = yaml.safe_load(file)
    rows = []
    with tempfile.TemporaryDirectory() as log_folder:
        for ppo_env in envs:
            env_id, note = env_to_run(ppo_env)
            row = Row(ppo_env, env_id)
            if env_id:
                row.entry = entry_for(env_id, entries)
                row.group_mode = entries.get(row.entry, {}).get("group_mode", DEFAULT_GROUP_MODE)
                row.trains = train(env_id, n_timesteps, log_folder)
            if note:
                row.trains = f"{row.trains} ({note})" if row.trains else note
            print(f"{ppo_env}: {row.trains}", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[Row], n_timesteps: int) -> str:
    lines = [
        f"| zoo's ppo.yml | env trained | grpo.yml entry | `group_mode` | trains with `--algo grpo -n {n_timesteps}` |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        env = f"`{row.env_id}`" if row.env_id else "-"
        entry = f"`{row.entry}`" if row.entry else "-"
        lines.append(f"| `{row.ppo_env}` | {env} | {entry} | {row.group_mode or '-'} | {row.trains} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", help="env ids (default: every env of the zoo's ppo.yml, and Pusher-v5)")
    parser.add_argument("-n", "--n-timesteps", type=int, default=256, help="real steps of each run (default: 256)")
    args = parser.parse_args(argv)
    envs = args.envs or [*ppo_envs(), *EXTRA_ENVS]
    print(markdown(coverage(envs, args.n_timesteps), args.n_timesteps))


if __name__ == "__main__":
    main()
