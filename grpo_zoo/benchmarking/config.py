"""Benchmark defaults (issue 4's targets) and the rows of the benchmark: which yml entry each one trains, edited how."""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grpo_zoo.groups.modes import DEFAULT_GROUP_MODE, MODES

# Deterministic-evaluation targets of issues 4 and 10 (CartPole: 475, the "solved" level used by issue 2) and
# issue 11's MuJoCo targets.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -85.0,
    "MountainCar-v0": -110.0,
    "MountainCarContinuous-v0": 90.0,
    "Pendulum-v1": -175.0,
    "LunarLander-v3": 200.0,
    "LunarLanderContinuous-v3": 200.0,
    "InvertedDoublePendulum-v5": 9_000.0,
    "Hopper-v5": 2_400.0,
    "HalfCheetah-v5": 5_000.0,
    "Walker2d-v5": 3_000.0,
    "Swimmer-v5": 280.0,
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

# `grpo-env`: the horizon of state groups scored with the env's own reward, where the entry's one-step reward
# function is dropped. A one-step env reward cannot rank actions (CartPole pays +1 whatever the action,
# Acrobot and MountainCar -1, Pendulum's reward is a cost of the state *before* the step plus 0.001 u^2), so
# each member follows pi_old for `horizon - 1` more steps. Untuned guesses, not results: long enough for an
# action's consequences to show in the env reward (a falling pole within ~30 steps; Acrobot and MountainCar
# pay only on reaching the goal, so longer), short enough to keep probes affordable. `--set grpo-env.horizon=H`.
ENV_REWARD_HORIZONS: dict[str, int] = {
    "CartPole-v1": 32,
    "Pendulum-v1": 32,
    "Acrobot-v1": 64,
    "MountainCar-v0": 64,
    "MountainCarContinuous-v0": 64,
}
DEFAULT_ENV_REWARD_HORIZON = 32

REWARD_KEYS = ("reward_function", "reward_weights")
# Keys that only mean something for state groups (dropped for the episode-groups variant)
STATE_ONLY_KEYS = (*REWARD_KEYS, *(key for key in MODES["state"].arguments if key not in MODES["episode"].arguments))

# `ppo-shaped`: the env wrapper (outside the Monitor) that hands the learner the grpo entry's reward function.
SHAPING_WRAPPER = "grpo_zoo.benchmarking.shaping.ShapedReward"

# Rows whose learner or controller is the grpo entry's reward function: none without one.
REWARD_FUNCTION_ROWS = ("ppo-shaped", "greedy")


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


def entry_key(config: Path, env_id: str) -> str:
    """
    Which entry of ``config`` serves ``env_id``: its own (or ``atari``, as the zoo picks); else the same env's newest
    older version (rl-zoo3's ppo.yml has MuJoCo's -v4 entries, and InvertedDoublePendulum's -v2, but none for -v5);
    else ``default``.

    :return: the key of the entry
    """
    with open(config) as f:
        entries = yaml.safe_load(f) or {}
    from grpo_zoo.zoo.register import zoo_entry_key

    if zoo_entry_key(entries, env_id) not in (None, "default"):
        return zoo_entry_key(entries, env_id)  # type: ignore[return-value]
    name, _, version = env_id.rpartition("-v")
    if name and version.isdigit():
        for older in range(int(version) - 1, -1, -1):
            if f"{name}-v{older}" in entries:
                return f"{name}-v{older}"
    if "default" in entries:
        return "default"
    raise ValueError(f"No entry for {env_id} (nor an older version of it, nor `default:`) in {config}")


def read_entry(config: Path, env_id: str) -> dict[str, Any]:
    """:return: the yml entry that serves ``env_id`` (see :func:`entry_key`)"""
    with open(config) as f:
        entries = yaml.safe_load(f) or {}
    return dict(entries[entry_key(config, env_id)])


def to_episode_groups(hyperparams: dict[str, Any], env_id: str | None = None) -> dict[str, Any]:
    """
    Turn a state-groups entry into its episode-groups twin: ``group_mode="episode"``, the env's own reward,
    state-only keys dropped, and ``n_envs`` rounded up to a multiple of ``group_size`` (at least two groups).

    :param hyperparams: a grpo.yml entry (unprocessed)
    :param env_id: unused (the signature of every row's edit)
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


def to_env_reward(hyperparams: dict[str, Any], env_id: str) -> dict[str, Any]:
    """
    The same entry learning from the env's reward: ``reward_function`` and ``reward_weights`` dropped. State
    groups scored one step ahead (``horizon`` 1, GRPO's default) get ``ENV_REWARD_HORIZONS[env_id]`` instead,
    since a one-step env reward cannot rank actions; ``exhaustive`` and everything else stay.

    :param hyperparams: a grpo.yml entry (unprocessed)
    :param env_id: the env, for its horizon
    :return: a new dict (the entry itself if it has no reward function)
    """
    if hyperparams.get("reward_function") is None:
        return dict(hyperparams)
    new = {key: value for key, value in hyperparams.items() if key not in REWARD_KEYS}
    if new.get("group_mode", DEFAULT_GROUP_MODE) == "state" and int(new.get("horizon", 1)) == 1:
        new["horizon"] = ENV_REWARD_HORIZONS.get(env_id, DEFAULT_ENV_REWARD_HORIZON)
    return new


def _eval_normalize(normalize: Any) -> dict[str, Any]:
    """The zoo's ``normalize`` value as VecNormalize kwargs (it evals strings such as ``"dict(norm_obs=True)"``)."""
    if isinstance(normalize, str):
        normalize = eval(normalize, {"__builtins__": {}, "dict": dict})
    if isinstance(normalize, dict):
        return dict(normalize)
    return {} if normalize else {"norm_obs": False, "norm_reward": False}


def with_shaped_reward(hyperparams: dict[str, Any], grpo_entry: dict[str, Any]) -> dict[str, Any]:
    """
    A zoo entry trained on ``grpo_entry``'s reward function: :class:`~grpo_zoo.benchmarking.shaping.ShapedReward`
    becomes the first ``vec_env_wrapper`` (outside every env's Monitor, which keeps the true reward), and
    VecNormalize's ``norm_reward`` is turned on when the entry does not normalise rewards (the entry's
    ``norm_obs`` choice kept): unnormalised, a shaped reward ~10x the env's scale stopped PPO from learning.

    :param hyperparams: the zoo algorithm's entry (unprocessed)
    :param grpo_entry: the grpo.yml entry that has the reward function
    :return: a new dict
    """
    if grpo_entry.get("reward_function") is None:
        raise ValueError("`ppo-shaped` needs a grpo.yml entry with a `reward_function`, this one has none")
    new = dict(hyperparams)
    kwargs = {"reward_function": grpo_entry["reward_function"]}
    if grpo_entry.get("reward_weights") is not None:
        kwargs["reward_weights"] = grpo_entry["reward_weights"]
    wrappers = new.get("vec_env_wrapper") or []
    # The zoo applies a list of wrappers in order, the first innermost: the shaping wrapper sees raw observations.
    new["vec_env_wrapper"] = [{SHAPING_WRAPPER: kwargs}, *(wrappers if isinstance(wrappers, list) else [wrappers])]
    normalize = _eval_normalize(new.get("normalize", False))
    if not normalize.get("norm_reward", True):  # VecNormalize's default is norm_reward=True
        new["normalize"] = {**normalize, "norm_reward": True}
    return new


Edit = Callable[[dict[str, Any], str], dict[str, Any]]

# Rows built from a grpo entry: row -> (the zoo algorithm that trains it, or None: no training; its edit).
GRPO_ROWS: dict[str, tuple[str | None, Edit | None]] = {
    "grpo": ("grpo", None),
    "grpo-env": ("grpo", to_env_reward),
    "grpo-episode": ("grpo", to_episode_groups),
    "greedy": (None, None),
}


@dataclass
class Variant:
    """
    One row of the benchmark: a yml entry, an edit of it, and who uses it.

    :param name: the row's name (``--algos``)
    :param zoo_algo: the algorithm rl-zoo3 trains on the entry, or None for the (untrained) greedy controller
    :param config: the yml file the entry comes from
    :param edit: ``edit(entry, env_id)`` -> the entry this row uses
    :param overrides: hyperparameters replacing the edited entry's (``--set``, applied last)
    :param reward_function: the reward function of the comparison (``--reward-function``): the ``grpo`` row scores
        members by it, ``ppo-shaped`` trains on it, ``greedy`` plays it; None: the grpo entry's
    :param grpo_config: the yml file of the grpo entries (``--grpo-conf``); None: the shipped ``grpo.yml``
    """

    name: str
    zoo_algo: str | None
    config: Path
    edit: Edit | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    reward_function: str | None = None
    grpo_config: Path | None = None

    def grpo_entry(self, env_id: str) -> dict[str, Any]:
        """:return: the grpo entry of ``env_id``, with the comparison's reward function"""
        entry = read_entry(self.grpo_config or grpo_hyperparams_path(), env_id)
        if self.reward_function is not None:
            entry["reward_function"] = self.reward_function
            entry.pop("reward_weights", None)
        return entry

    def hyperparams(self, env_id: str) -> dict[str, Any]:
        """:return: the unprocessed entry used for ``env_id`` (what ExperimentManager will preprocess)."""
        entry = self.grpo_entry(env_id) if self.name in GRPO_ROWS else read_entry(self.config, env_id)
        if self.edit is not None:
            entry = self.edit(entry, env_id)
        if self.name == "ppo-shaped":
            entry = with_shaped_reward(entry, self.grpo_entry(env_id))
        entry.update(self.overrides)
        return entry

    def default_budget(self, env_id: str) -> int:
        """:return: real steps to train for (0 for the greedy controller, which does not learn)."""
        if self.zoo_algo is None:
            return 0
        if self.zoo_algo == "grpo" and env_id in GRPO_BUDGETS:
            return GRPO_BUDGETS[env_id]
        return int(float(self.hyperparams(env_id)["n_timesteps"]))

    def skip_reason(self, env_id: str) -> str | None:
        """:return: why this row has no run on ``env_id`` (the grpo entry has no reward function), else None."""
        if self.name not in REWARD_FUNCTION_ROWS:
            return None
        if self.grpo_entry(env_id).get("reward_function") is not None:
            return None
        return f"the grpo entry of {env_id} learns from the env reward (no reward_function), so there is no shaped reward"


def make_variant(
    name: str,
    overrides: dict[str, Any] | None = None,
    reward_function: str | None = None,
    grpo_config: str | Path | None = None,
) -> Variant:
    """
    :param name: ``grpo`` (shipped grpo.yml entry), ``grpo-env`` (the same, env reward), ``grpo-episode`` (the
        same, episode groups with the env reward), ``ppo-shaped`` (rl-zoo3's PPO entry trained on the grpo
        entry's reward function), ``greedy`` (that reward function as a one-step greedy controller, no learning)
        or any rl-zoo3 algorithm with its own yml (``ppo``, ``a2c``...)
    :param overrides: hyperparameters replacing the (edited) yml entry's (applied last)
    :param reward_function: the comparison's reward function (see :class:`Variant`); None: the grpo entry's
    :param grpo_config: the yml file of the grpo entries (e.g. ``hyperparams/grpo-reward-fns.yml``); None: the
        shipped ``grpo.yml``
    """
    overrides = overrides or {}
    grpo_path = None if grpo_config is None else Path(grpo_config).resolve()
    if grpo_path is not None and not grpo_path.is_file():
        raise FileNotFoundError(f"--grpo-conf {grpo_config}: no such file (give the path of a grpo yml file)")
    if name in GRPO_ROWS:
        zoo_algo, edit = GRPO_ROWS[name]
        config = grpo_path or grpo_hyperparams_path()
        return Variant(name, zoo_algo, config, edit, overrides, reward_function, grpo_path)
    zoo_algo = "ppo" if name == "ppo-shaped" else name
    return Variant(name, zoo_algo, zoo_hyperparams_path(zoo_algo), None, overrides, reward_function, grpo_path)
