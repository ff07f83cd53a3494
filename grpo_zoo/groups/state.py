"""
State groups: branch the env at visited states and score each member's own action on its own outcome.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.groups.base import Actor, GroupRollout, RealStepsCallback
from grpo_zoo.groups.batches import concatenate, repeat, take
from grpo_zoo.groups.branching import EnvBrancher
from grpo_zoo.groups.sampling import noise_width, repeat_obs, sample_members, sample_with_noise
from grpo_zoo.groups.vec_obs import ObsPipeline


@dataclass
class _Roots:
    """The branched states of a rollout, in the order they were visited, and the real step taken from each."""

    env: list[np.ndarray] = field(default_factory=list)  # env index of each root
    policy_obs: list[Any] = field(default_factory=list)  # what the policy saw (trained on)
    raw_obs: list[Any] = field(default_factory=list)  # what the env returned (reward functions, probes)
    actions: list[np.ndarray] = field(default_factory=list)  # the real action, as sampled by the policy
    next_raw: list[Any] = field(default_factory=list)  # the real step, to audit the probes against
    rewards: list[np.ndarray] = field(default_factory=list)
    dones: list[np.ndarray] = field(default_factory=list)
    known: list[np.ndarray] = field(default_factory=list)  # next_raw is exact (not a normalised terminal obs)

    def add(self, mask: np.ndarray, **rows: Any) -> None:
        """:param rows: [n_envs, ...] batches (or dicts) of the step, of which the ``mask`` rows are kept"""
        self.env.append(np.flatnonzero(mask))
        for name, value in rows.items():
            getattr(self, name).append(take(value, mask))

    def stacked(self) -> dict[str, Any]:
        """Every field concatenated and sorted by env (stable: each env's roots stay in the order it saved them)."""
        env = np.concatenate(self.env)
        order = np.argsort(env, kind="stable")
        names = ("policy_obs", "raw_obs", "actions", "next_raw", "rewards", "dones", "known")
        return {"env": env[order], **{name: take(concatenate(getattr(self, name)), order) for name in names}}


class StateGroups:
    """
    Branched probes (``group_mode="state"``), the control analogue of TRPO's vine sampling (VinePPO).

    The real envs step with pi_old as in PPO. At a ``branch_fraction`` of the visited states (evenly spaced in
    each env) the simulator state is saved; after the rollout, G members start from each saved state: member 0
    takes the action the real env took there, the others their own samples of pi_old (or, with ``exhaustive``,
    every action once). Each member then follows pi_old for ``horizon - 1`` more steps with common random
    numbers (the same policy noise in every copy of a state). Its score is the discounted sum of rewards,
    ``reward_function(s, a, s')`` if given, else the env reward; a member stops scoring when its episode ends.

    Member 0's first step repeats the real step: the two must agree exactly, so every rollout audits the
    branching (an env whose randomness escapes its snapshot is stopped with a clear error).

    :param group_size: G, members per branched state (ignored when exhaustive)
    :param horizon: Steps scored per member, the branched action included
    :param exhaustive: Discrete spaces: every action once, weighted by pi_old(a|s)
    :param branch_fraction: Fraction of the visited states that are branched, in (0, 1]
    :param seed: Seed of where the branching starts in each env
    """

    def __init__(self, group_size: int, horizon: int, exhaustive: bool, branch_fraction: float = 1.0, seed: int | None = None):
        self.group_size = group_size
        self.horizon = horizon
        self.exhaustive = exhaustive
        self.branch_fraction = branch_fraction
        self.rng = np.random.default_rng(seed)
        self.pipeline: ObsPipeline | None = None
        self._credit = np.zeros(0)

    def attach(self, env: VecEnv) -> None:
        """Attach a brancher to every env and prove that its snapshots are exact."""
        self.pipeline = ObsPipeline(env)
        for index in range(env.num_envs):
            env.set_attr("_grpo_brancher", EnvBrancher(index), indices=[index])
        for index, reason in enumerate(env.env_method("grpo_branch", "verify")):
            if reason is not None:
                raise ValueError(unbranchable_message(index, reason))
        # Where each env's evenly spaced branch points start
        self._credit = self.rng.uniform(size=env.num_envs)

    def collect(
        self, actor: Actor, env: VecEnv, last_obs: Any, n_rollout_steps: int, on_real_steps: RealStepsCallback
    ) -> GroupRollout | None:
        assert self.pipeline is not None, "attach() the env first"
        roots = _Roots()
        env.env_method("grpo_branch", "clear")  # roots left by an interrupted rollout
        obs = last_obs
        for _ in range(n_rollout_steps):
            with th.no_grad():
                actions = actor.policy.get_distribution(obs_as_tensor(obs, actor.policy.device)).get_actions()
            actions_np = actions.cpu().numpy()
            branch = self._branch_points()
            if branch.any():
                env.env_method("grpo_branch", "save_root", branch)
                raw = self.pipeline.raw(obs)
            new_obs, rewards, dones, infos = env.step(actor.env_actions(actions_np))
            if branch.any():
                next_raw, known = self.pipeline.raw_next(new_obs, dones, infos)
                rewards = self.pipeline.raw_rewards(rewards)
                roots.add(branch, policy_obs=obs, raw_obs=raw, actions=actions_np, next_raw=next_raw, rewards=rewards)
                roots.dones.append(dones[branch])
                roots.known.append(known[branch])
            if not on_real_steps(new_obs, dones, infos, env.num_envs):
                return None
            obs = new_obs
        if sum(len(envs) for envs in roots.env) == 0:
            return _no_groups(obs, actor, self.group_size)
        return self._probe(actor, env, roots.stacked())

    def _branch_points(self) -> np.ndarray:
        """Which envs branch at this step: ``branch_fraction`` of the steps, evenly spaced."""
        self._credit += self.branch_fraction
        branch = self._credit >= 1.0
        self._credit[branch] -= 1.0
        return branch

    def _probe(self, actor: Actor, env: VecEnv, roots: dict[str, Any]) -> GroupRollout:
        """Run the members of every root for ``horizon`` steps and score them."""
        assert self.pipeline is not None
        policy, device = actor.policy, actor.policy.device
        n_roots = len(roots["env"])
        with th.no_grad():
            actions, log_probs, weights, real_member = sample_members(
                policy,
                obs_as_tensor(roots["policy_obs"], device),  # type: ignore[arg-type]
                th.as_tensor(roots["actions"], device=device),
                self.group_size,
                self.exhaustive,
            )
        group_size = actions.shape[1]
        member_actions = actions.cpu().numpy()
        env_actions = actor.env_actions(member_actions.reshape(n_roots * group_size, *member_actions.shape[2:]))
        first = env_actions.reshape(n_roots, group_size, -1)
        distinct = ~np.all(first == first[:, :1], axis=(1, 2))

        # Members are laid out root by root, and roots env by env: one slice of members per env
        members = _MemberLayout(roots["env"], group_size, env.num_envs)
        state = repeat(roots["raw_obs"], group_size)
        env.env_method("grpo_branch", "start", members.roots_per_env(), members.split(state), indices=members.envs)
        scores = np.zeros(n_roots * group_size)
        active = np.ones(n_roots * group_size, dtype=bool)
        step_actions, discount, probe_steps = env_actions, 1.0, 0
        for step in range(self.horizon):
            results = env.env_method(
                "grpo_branch", "step", members.split(step_actions), members.split(active), indices=members.envs
            )
            next_state = concatenate([r[0] for r in results])
            env_rewards, terminated, truncated = (np.concatenate([r[i] for r in results]) for i in (1, 2, 3))
            probe_steps += int(active.sum())
            if step == 0:
                real = members.of_real(real_member)
                _audit(roots, take(next_state, real), env_rewards[real], (terminated | truncated)[real])
            rewards = env_rewards
            if actor.reward_model is not None:
                rewards = np.zeros(len(active))
                rewards[active] = actor.reward_model.score(take(state, active), step_actions[active], take(next_state, active))
            scores += discount * rewards * active
            active &= ~(terminated | truncated)
            discount *= actor.gamma
            if step + 1 == self.horizon or not active.any():
                break
            state = next_state
            step_actions = self._follow_policy(actor, state, n_roots, group_size)
        env.env_method("grpo_branch", "clear", indices=members.envs)

        return GroupRollout(
            observations=roots["policy_obs"],
            obs_index=np.repeat(np.arange(n_roots), group_size),
            actions=member_actions.reshape(n_roots * group_size, *member_actions.shape[2:]),
            log_probs=log_probs.cpu().numpy().reshape(-1),
            index=np.stack(
                [
                    np.repeat(np.arange(n_roots), group_size),
                    np.tile(np.arange(group_size), n_roots),
                    np.zeros(n_roots * group_size, dtype=int),
                ],
                axis=1,
            ),
            returns=scores.reshape(n_roots, group_size, 1),
            weights=weights.cpu().numpy(),
            distinct=distinct,
            probe_steps=probe_steps,
        )

    def _follow_policy(self, actor: Actor, state: Any, n_roots: int, group_size: int) -> np.ndarray:
        """pi_old's next action in every member, with the same policy noise across the members of a root."""
        assert self.pipeline is not None
        policy = actor.policy
        with th.no_grad():
            distribution = policy.get_distribution(obs_as_tensor(self.pipeline.to_policy(state), policy.device))  # type: ignore[arg-type]
            uniform = th.rand(n_roots, noise_width(policy.action_space), device=policy.device)
            actions = sample_with_noise(distribution, repeat_obs(uniform, group_size))  # type: ignore[arg-type]
        actions_np = actions.cpu().numpy().reshape(n_roots * group_size, *(policy.action_space.shape or ()))
        return actor.env_actions(actions_np.astype(policy.action_space.dtype, copy=False))


class _MemberLayout:
    """
    Where the members of each root live: root r (sorted by env) has members ``[r * G, (r + 1) * G)``.

    :param root_env: Env of each root, sorted
    :param group_size: G
    :param n_envs: Number of envs of the VecEnv
    """

    def __init__(self, root_env: np.ndarray, group_size: int, n_envs: int):
        self.group_size = group_size
        self.n_envs = n_envs
        counts = np.bincount(root_env, minlength=n_envs)
        self.counts = counts  # roots per env
        self.envs = [int(i) for i in np.flatnonzero(counts)]
        self.bounds = np.concatenate([[0], np.cumsum(counts * group_size)])

    def split(self, members: Any) -> list[Any]:
        """[n_members, ...] -> one entry per env of the VecEnv (empty for envs without roots)."""
        return [take(members, slice(self.bounds[i], self.bounds[i + 1])) for i in range(self.n_envs)]

    def roots_per_env(self) -> list[np.ndarray]:
        """Per env: the root of each of its members, as the env's brancher numbers its saved roots."""
        return [np.repeat(np.arange(count), self.group_size) for count in self.counts]

    def of_real(self, real_member: th.Tensor) -> np.ndarray:
        """Index of the member that took the real action, for every root."""
        n_roots = len(real_member)
        return np.arange(n_roots) * self.group_size + real_member.cpu().numpy()


def _audit(roots: dict[str, Any], reached: Any, rewards: np.ndarray, ended: np.ndarray) -> None:
    """
    The member that took the real action from a root must reach what the real env reached, bit for bit; if
    not, the env's randomness or state escapes its snapshot, and every probe of it is wrong.

    :param reached: Next observation of each root's real-action member, [n_roots, ...] (or dict)
    :param rewards: Its env reward, [n_roots]
    :param ended: Whether its episode ended, [n_roots]
    """
    real = roots["next_raw"]
    if isinstance(real, dict):
        same_obs = np.all([_rows_equal(reached[key], real[key]) for key in real], axis=0)
    else:
        same_obs = _rows_equal(reached, real)
    same = same_obs & (rewards.astype(np.float32) == roots["rewards"].astype(np.float32)) & (ended == roots["dones"])
    wrong = np.flatnonzero(roots["known"] & ~same)
    if len(wrong):
        r = wrong[0]
        what = "observation" if not same_obs[r] else "reward or episode end"
        raise ValueError(
            unbranchable_message(
                int(roots["env"][r]),
                f"a probe that took the real env's action from the same state reached a different {what} "
                "(the env keeps state or draws random numbers outside what its snapshot holds)",
            )
        )


def _rows_equal(a: Any, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=b.dtype).reshape(len(b), -1)
    return np.all(a == b.reshape(len(b), -1), axis=1)


def _no_groups(obs: Any, actor: Actor, group_size: int) -> GroupRollout:
    """A rollout without a branched state (``branch_fraction`` * real steps < 1): nothing to train on."""
    space = actor.policy.action_space
    return GroupRollout(
        observations=take(obs, slice(0, 0)),
        obs_index=np.zeros(0, dtype=int),
        actions=np.zeros((0, *(space.shape or ())), dtype=space.dtype),
        log_probs=np.zeros(0),
        index=np.zeros((0, 3), dtype=int),
        returns=np.zeros((0, group_size, 1)),
        weights=np.zeros((0, group_size)),
        distinct=np.zeros(0, dtype=bool),
    )


def unbranchable_message(index: int, reason: str) -> str:
    """The error of an env that state groups cannot branch, with the fix."""
    return (
        f"group_mode='state' branches the env at visited states, but env {index} cannot be branched exactly: "
        f"{reason}. Use group_mode='episode' (groups of envs reset with a shared seed), which works with any env."
    )
