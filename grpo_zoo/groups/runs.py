"""
What a state-group rollout records: the real trajectory (the branched states among its steps) and the members'
runs from them, with the small array helpers the probes need.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grpo_zoo.groups.batches import concatenate, stack, take


@dataclass
class Trajectory:
    """The real steps of a rollout, [T, n_envs, ...] each, and the states saved as roots."""

    policy_obs: list[Any] = field(default_factory=list)  # what the policy saw (trained on)
    raw_obs: list[Any] = field(default_factory=list)  # what the env returned (reward functions, probes)
    actions: list[np.ndarray] = field(default_factory=list)  # as sampled by the policy
    log_probs: list[np.ndarray] = field(default_factory=list)  # log pi_old of those actions
    env_actions: list[np.ndarray] = field(default_factory=list)  # as the env received them
    next_raw: list[Any] = field(default_factory=list)  # the observation reached (the terminal one at an end)
    known: list[np.ndarray] = field(default_factory=list)  # next_raw is exact (not a normalised terminal obs)
    rewards: list[np.ndarray] = field(default_factory=list)  # the env's reward, before VecNormalize
    dones: list[np.ndarray] = field(default_factory=list)
    branch: list[np.ndarray] = field(default_factory=list)  # whether the state was saved as a root

    def add(self, **step: Any) -> None:
        for name, value in step.items():
            getattr(self, name).append(value)

    def stacked(self, name: str) -> Any:
        """[T, n_envs, ...] (or a dict of them)."""
        return stack(getattr(self, name))


@dataclass
class Runs:
    """
    H-step runs of members from their roots.

    :param rewards: [n, H], NaN once a run has ended
    :param observations: What pi_old saw at each step, [n, H, *obs_shape] (kept only to train continuations)
    :param actions: What it did, [n, H, *action_shape]
    :param log_probs: log pi_old of those actions, [n, H]
    """

    rewards: np.ndarray
    observations: Any = None
    actions: Any = None
    log_probs: Any = None

    def take(self, index: np.ndarray) -> "Runs":
        if self.observations is None:
            return Runs(self.rewards[index])
        return Runs(self.rewards[index], take(self.observations, index), self.actions[index], self.log_probs[index])

    @staticmethod
    def concatenate(runs: list["Runs"]) -> "Runs":
        runs = [r for r in runs if len(r.rewards)] or runs[:1]
        if any(r.observations is None for r in runs):
            return Runs(np.concatenate([r.rewards for r in runs]))
        return Runs(
            np.concatenate([r.rewards for r in runs]),
            concatenate([r.observations for r in runs]),
            np.concatenate([r.actions for r in runs]),
            np.concatenate([r.log_probs for r in runs]),
        )


class StepRecorder:
    """What simulated members saw and did at each step, when continuations are trained."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.steps: list[tuple[Any, np.ndarray, np.ndarray]] = []

    def __call__(self, observations: Any, actions: np.ndarray, log_probs: np.ndarray) -> None:
        if self.enabled:
            self.steps.append((observations, actions, log_probs))

    def into(self, runs: Runs, horizon: int) -> None:
        """Fill ``runs`` (steps never reached repeat the last one: their rewards are NaN, so they are not trained)."""
        if not self.enabled:
            return
        steps = self.steps + [self.steps[-1]] * (horizon - len(self.steps))
        runs.observations = swap_steps(stack([s[0] for s in steps]))
        runs.actions = np.stack([s[1] for s in steps], axis=1)
        runs.log_probs = np.stack([s[2] for s in steps], axis=1)


def swap_steps(obs: Any) -> Any:
    """[H, n, ...] -> [n, H, ...] (array or dict)."""
    if isinstance(obs, dict):
        return {key: np.swapaxes(value, 0, 1) for key, value in obs.items()}
    return np.swapaxes(obs, 0, 1)


def first_equal_member(first_actions: np.ndarray) -> np.ndarray:
    """
    :param first_actions: Each member's first env action, [n_roots, G, action_size]
    :return: For each member, the first member of its group that took the same action, [n_roots, G]
    """
    group_size = first_actions.shape[1]
    representative = np.tile(np.arange(group_size), (len(first_actions), 1))
    for member in range(group_size - 1, 0, -1):
        for earlier in range(member - 1, -1, -1):
            same = np.all(first_actions[:, member] == first_actions[:, earlier], axis=1)
            representative[same, member] = earlier
    return representative


class EnvSlices:
    """
    Members sorted by env: one contiguous slice of them per env of the VecEnv.

    :param member_env: Env of each member, sorted
    :param n_envs: Number of envs of the VecEnv
    """

    def __init__(self, member_env: np.ndarray, n_envs: int):
        counts = np.bincount(member_env, minlength=n_envs)
        self.n_envs = n_envs
        self.envs = [int(i) for i in np.flatnonzero(counts)]
        self.bounds = np.concatenate([[0], np.cumsum(counts)])

    def split(self, members: Any) -> list[Any]:
        """[n_members, ...] -> one entry per env of the VecEnv (empty for envs without members)."""
        return [take(members, slice(self.bounds[i], self.bounds[i + 1])) for i in range(self.n_envs)]


def flatten(obs: Any, shape: tuple[int]) -> Any:
    if isinstance(obs, dict):
        return {key: value.reshape(*shape, *value.shape[2:]) for key, value in obs.items()}
    return obs.reshape(*shape, *obs.shape[2:])
