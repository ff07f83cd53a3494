"""Benchmark defaults (issue 4's targets) and where each algorithm's hyperparameters live."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Deterministic-evaluation targets of issue 4 (CartPole: 475, the "solved" level used by issue 2).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -85.0,
    "MountainCar-v0": -110.0,
    "MountainCarContinuous-v0": 90.0,
    "Pendulum-v1": -175.0,
    "LunarLander-v3": 200.0,
    "LunarLanderContinuous-v3": 200.0,
}

# GRPO's real-step budget: the "within" column of issue 4. Other algorithms default to their yml n_timesteps.
GRPO_BUDGETS: dict[str, int] = {
    "CartPole-v1": 30_000,
    "Acrobot-v1": 200_000,
    "MountainCar-v0": 200_000,
    "MountainCarContinuous-v0": 20_000,
    "Pendulum-v1": 50_000,
    "LunarLander-v3": 1_000_000,
    "LunarLanderContinuous-v3": 1_000_000,
}

# Evaluate every k real steps: about 30 points over GRPO's budget.
DEFAULT_EVAL_FREQ: dict[str, int] = {
    "CartPole-v1": 1_000,
    "Acrobot-v1": 5_000,
    "MountainCar-v0": 5_000,
    "MountainCarContinuous-v0": 1_000,
    "Pendulum-v1": 2_000,
    "LunarLander-v3": 25_000,
    "LunarLanderContinuous-v3": 25_000,
}

# Keys that only mean something for state groups (dropped for the episode-groups variant).
STATE_ONLY_KEYS = ("reward_function", "reward_weights", "horizon", "exhaustive")


def grpo_hyperparams_path() -> Path:
    """
    The project's ``grpo.yml``, found exactly as the zoo hook finds it (``grpo_zoo/hyperparams/grpo.yml`` in an
    installed wheel, else ``<repo>/hyperparams/grpo.yml`` in a checkout), so the benchmark and
    ``python -m rl_zoo3.train --algo grpo`` read the same file.

    :return: path of the GRPO hyperparameter file
    """
    from grpo_zoo.zoo.register import grpo_hyperparams_path as zoo_grpo_hyperparams_path

    path = zoo_grpo_hyperparams_path()
    if not path.is_file():
        raise FileNotFoundError(f"grpo.yml not found (looked for {path} and <repo>/hyperparams/grpo.yml)")
    return path


def zoo_hyperparams_path(algo: str) -> Path:
    """:return: rl-zoo3's own ``hyperparams/<algo>.yml`` (as ``ExperimentManager`` resolves it)."""
    import rl_zoo3

    root = Path(rl_zoo3.__file__).resolve().parent
    path = root / "hyperparams" / f"{algo}.yml"
    return path if path.is_file() else root.parent / "hyperparams" / f"{algo}.yml"


def read_entry(config: Path, env_id: str) -> dict[str, Any]:
    """:return: the yml entry for ``env_id`` (or ``default``), as ``ExperimentManager.read_hyperparameters`` picks it."""
    with open(config) as f:
        entries = yaml.safe_load(f) or {}
    if env_id in entries:
        return dict(entries[env_id])
    if "default" in entries:
        return dict(entries["default"])
    raise ValueError(f"No entry for {env_id} (and no `default:`) in {config}")


def to_episode_groups(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a state-groups entry into its episode-groups twin: ``group_mode="episode"``, the env's own reward,
    state-only keys dropped, and ``n_envs`` rounded up to a multiple of ``group_size`` (at least two groups).

    :param hyperparams: a grpo.yml entry (unprocessed)
    :return: a new dict
    """
    if hyperparams.get("group_mode") == "episode":
        return dict(hyperparams)
    new = {key: value for key, value in hyperparams.items() if key not in STATE_ONLY_KEYS}
    new["group_mode"] = "episode"
    group_size = int(new.get("group_size", 4))
    n_envs = int(new.get("n_envs", 1))
    new["n_envs"] = max(2 * group_size, group_size * math.ceil(n_envs / group_size))
    return new


@dataclass
class Variant:
    """One row of the benchmark: a zoo algorithm, its yml file, and edits to its env entry."""

    name: str
    zoo_algo: str
    config: Path
    episode_groups: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def hyperparams(self, env_id: str) -> dict[str, Any]:
        """:return: the unprocessed entry used for ``env_id`` (what ExperimentManager will preprocess)."""
        entry = read_entry(self.config, env_id)
        if self.episode_groups:
            entry = to_episode_groups(entry)
        entry.update(self.overrides)
        return entry

    def default_budget(self, env_id: str) -> int:
        if self.zoo_algo == "grpo" and env_id in GRPO_BUDGETS:
            return GRPO_BUDGETS[env_id]
        return int(float(self.hyperparams(env_id)["n_timesteps"]))


def make_variant(name: str, overrides: dict[str, Any] | None = None) -> Variant:
    """
    :param name: ``grpo`` (shipped grpo.yml, state groups as tuned), ``grpo-episode`` (same entry, episode
        groups with the env reward) or any rl-zoo3 algorithm with its own yml (``ppo``, ``a2c``...)
    :param overrides: hyperparameters replacing the yml entry's (applied last)
    """
    overrides = overrides or {}
    if name == "grpo":
        return Variant(name, "grpo", grpo_hyperparams_path(), overrides=overrides)
    if name == "grpo-episode":
        return Variant(name, "grpo", grpo_hyperparams_path(), episode_groups=True, overrides=overrides)
    return Variant(name, name, zoo_hyperparams_path(name), overrides=overrides)
