"""
What a state-group rollout records: the real trajectory (the branched states among its steps), the roots and the
members' first actions there, the plan of which members' runs are read, simulated or audited, and the runs
themselves, with the small array helpers the probes need.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grpo_zoo.groups.batches import concatenate, map_obs, stack, take


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


@dataclass
class Roots:
    """
    The states a rollout saved, env by env and, within an env, in the order it saved them (its brancher numbers
    them so).

    :param t: Rollout step of each root, [n_roots]
    :param env: Its env, [n_roots] (sorted)
    :param policy_obs: What the policy saw there, [n_roots, *obs_shape] (or dict)
    :param real_actions: The action the real env took there, as the policy sampled it, [n_roots, *action_shape]
    """

    t: np.ndarray
    env: np.ndarray
    policy_obs: Any
    real_actions: np.ndarray

    @staticmethod
    def of(trajectory: Trajectory) -> "Roots":
        env, t = (a.astype(int) for a in np.nonzero(np.stack(trajectory.branch).T))
        return Roots(t, env, take(trajectory.stacked("policy_obs"), (t, env)), np.stack(trajectory.actions)[t, env])

    def __len__(self) -> int:
        return len(self.t)

    @property
    def local(self) -> np.ndarray:
        """Each root's number among its env's roots (the brancher's), [n_roots]."""
        return np.arange(len(self.env)) - np.searchsorted(self.env, self.env)


@dataclass
class Members:
    """
    The G members of every root's group, by their first action.

    :param actions: As the policy sampled them, [n_roots, G, *action_shape]
    :param env_actions: As the env receives them, [n_roots, G, *env_action_shape]
    :param log_probs: log pi_old of those actions, [n_roots, G]
    :param weights: Member weights in the surrogate and the baseline, [n_roots, G], rows summing to 1
    :param real_member: The member that took the real env's action, [n_roots]
    """

    actions: np.ndarray
    env_actions: np.ndarray
    log_probs: np.ndarray
    weights: np.ndarray
    real_member: np.ndarray


@dataclass
class ProbePlan:
    """
    Where the run of every member comes from: read off the real trajectory, simulated, or shared with the first
    member of its group that sent the env the same first action (its representative). Only what is unknown is
    simulated; one member per env is also simulated for a single step, to audit the env's snapshots.

    :param representative: Each member's representative, [n_roots, G] (itself, if it is the first with its action)
    :param distinct: Whether the group's members took at least two different actions, [n_roots]; a group of one
        action has nothing to compare and is not probed
    :param real_rep: The representative of the member that took the real env's action, [n_roots]
    :param read: The roots whose real action's run is read off the real trajectory, [n_read]
    :param sim_root: Root of each simulated member, [n_sim] (sorted: env by env, as the roots are)
    :param sim_member: Which member of its group it is, [n_sim]
    :param audit: Whether it took the real action, so that its first step must repeat the real step, [n_sim]
    :param audit_only: Whether it is simulated for that audit step only (its run is read or not needed), [n_sim]
    """

    representative: np.ndarray
    distinct: np.ndarray
    real_rep: np.ndarray
    read: np.ndarray
    sim_root: np.ndarray
    sim_member: np.ndarray
    audit: np.ndarray
    audit_only: np.ndarray

    def gather(self, real_runs: Runs, simulated: Runs) -> tuple[Runs, np.ndarray]:
        """
        The runs the groups are scored on, and which of them is each member's.

        :param real_runs: The real action's run at every root, [n_roots] (only those in ``read`` are used)
        :param simulated: The simulated members' runs, [n_sim] (audit-only ones are dropped)
        :return: The runs (those read, then those simulated) and each member's, [n_roots, G] (-1: none, in a group of
            one action)
        """
        kept = ~self.audit_only
        runs = Runs.concatenate([real_runs.take(self.read), simulated.take(np.flatnonzero(kept))])
        run_of = np.full(self.representative.shape, -1)
        run_of[self.read, self.real_rep[self.read]] = np.arange(len(self.read))
        run_of[self.sim_root[kept], self.sim_member[kept]] = len(self.read) + np.arange(int(kept.sum()))
        return runs, np.take_along_axis(run_of, self.representative, axis=1)  # members of one action share its run


def plan_probes(members: Members, real_known: np.ndarray, root_env: np.ndarray) -> ProbePlan:
    """
    :param members: The members of every root's group
    :param real_known: Whether the real action's run can be read off the real trajectory at each root, [n_roots]
    :param root_env: Env of each root, [n_roots] (sorted)
    :return: Which members are read, simulated and audited
    """
    n_roots, group_size = members.log_probs.shape
    representative = first_equal_member(members.env_actions.reshape(n_roots, group_size, -1))
    distinct = np.any(representative != 0, axis=1)
    roots = np.arange(n_roots)
    real_rep = representative[roots, members.real_member]
    # Simulated: the representatives of groups that compare distinct actions, but the real action's where it is read
    simulate = (representative == np.arange(group_size)) & distinct[:, None]
    simulate[roots, real_rep] &= ~real_known
    # One audit step per env: the real action's member at the env's last root repeats the real step
    audit_roots = np.flatnonzero(np.r_[root_env[1:] != root_env[:-1], True])
    audit_only = np.zeros_like(simulate)
    audit_only[audit_roots, real_rep[audit_roots]] = ~simulate[audit_roots, real_rep[audit_roots]]
    sim_root, sim_member = np.nonzero(simulate | audit_only)
    return ProbePlan(
        representative=representative,
        distinct=distinct,
        real_rep=real_rep,
        read=np.flatnonzero(real_known & distinct),
        sim_root=sim_root,
        sim_member=sim_member,
        audit=sim_member == real_rep[sim_root],
        audit_only=audit_only[sim_root, sim_member],
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
    return map_obs(lambda value: np.swapaxes(value, 0, 1), obs)


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


def merge_first_axes(obs: Any) -> Any:
    """[A, B, ...] -> [A * B, ...] (array or dict): e.g. a rollout's [T, n_envs] steps into one batch."""
    return map_obs(lambda value: value.reshape(value.shape[0] * value.shape[1], *value.shape[2:]), obs)
