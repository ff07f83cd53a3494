"""
State groups: branch the env at visited states and score each member's own action on its own outcome.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.advantages import discounted_returns_to_go
from grpo_zoo.groups.base import GroupRollout, OldPolicy, RealStepsCallback
from grpo_zoo.groups.batches import concatenate, take
from grpo_zoo.groups.branching import attach_branchers
from grpo_zoo.groups.finite import at_rollout_step, check_finite
from grpo_zoo.groups.runs import (
    EnvSlices,
    Members,
    ProbePlan,
    Roots,
    Runs,
    StepRecorder,
    Trajectory,
    merge_first_axes,
    plan_probes,
)
from grpo_zoo.groups.sampling import noise_width, policy_step, sample_members, sample_with_noise
from grpo_zoo.groups.vec_obs import ObsPipeline
from grpo_zoo.rewards import RewardModel


class StateGroups:
    """
    Branched probes (``group_mode="state"``), the control analogue of TRPO's vine sampling (VinePPO).

    The real envs step with pi_old as in PPO. At a ``branch_fraction`` of the visited states (evenly spaced in
    each env) the simulator state is saved; after the rollout, G members start from each saved state: member 0
    takes the action the real env took there, the others their own samples of pi_old (or, with ``exhaustive``,
    every action once). Each member then follows pi_old for ``horizon - 1`` more steps with common random
    numbers: the policy noise of the real env's own steps, so that a member taking the real action *is* the
    real trajectory. Its score is the discounted sum of rewards, ``reward_function(s, a, s')`` if given, else
    the env reward; a member stops scoring when its episode ends.

    Only what is unknown is simulated: the real action's member is read off the real trajectory when its
    horizon ends within the rollout, members that took the same first action share one probe, and a group
    whose members all took one action (a sure policy) is not probed: it has nothing to compare. Each rollout,
    one probe step per env repeats a real step: the two must agree exactly (an env whose randomness escapes
    its snapshot is stopped with a clear error).

    :param group_size: G, members per branched state (ignored when exhaustive)
    :param horizon: Steps scored per member, the branched action included
    :param exhaustive: Discrete spaces: every action once, weighted by pi_old(a|s)
    :param branch_fraction: Fraction of the visited states that are branched, in (0, 1]
    :param train_continuations: Also train on the later steps of every member's run (pi_old's own actions), each
        compared with the members still running at that step (process supervision from a shared state), so that
        every simulated step is a training sample; otherwise only the branched actions are (TRPO's vine)
    :param seed: Seed of where the branching starts in each env
    """

    def __init__(
        self,
        group_size: int,
        horizon: int,
        exhaustive: bool,
        branch_fraction: float = 1.0,
        train_continuations: bool = False,
        seed: int | None = None,
    ):
        self.group_size = group_size
        self.train_continuations = train_continuations
        self.horizon = horizon
        self.exhaustive = exhaustive
        self.branch_fraction = branch_fraction
        self.rng = np.random.default_rng(seed)
        self.pipeline: ObsPipeline | None = None
        self._branch_progress = np.zeros(0)  # per env, towards its next branch point (it branches at 1)

    def attach(self, env: VecEnv) -> None:
        """Attach a brancher to every env and prove that its snapshots are exact."""
        self.pipeline = ObsPipeline(env)
        attach_branchers(env)
        for index, reason in enumerate(env.env_method("grpo_branch", "verify")):
            if reason is not None:
                raise ValueError(unbranchable_message(index, reason))
        # Where each env's evenly spaced branch points start
        self._branch_progress = self.rng.uniform(size=env.num_envs)

    def collect(
        self, old_policy: OldPolicy, env: VecEnv, last_obs: Any, n_rollout_steps: int, on_real_steps: RealStepsCallback
    ) -> GroupRollout | None:
        assert self.pipeline is not None, "attach() the env first"
        policy = old_policy.policy
        env.env_method("grpo_branch", "clear")  # roots left by an interrupted rollout
        # The policy noise of every real step, and of the probe steps past the rollout's end
        noise = th.rand(n_rollout_steps + self.horizon, env.num_envs, noise_width(policy.action_space), device=policy.device)
        trajectory = Trajectory()
        obs = last_obs
        for t in range(n_rollout_steps):
            where = at_rollout_step(t)
            raw = self.pipeline.raw(obs)
            check_finite("observation", raw, where)  # before the policy sees it (the first one, or a reset one)
            actions, log_probs = policy_step(policy, obs, sample_with_noise, noise[t])
            branch = self._branch_points()
            if branch.any():
                env.env_method("grpo_branch", "save_root", branch)
            env_actions = old_policy.env_actions(actions.astype(policy.action_space.dtype, copy=False))
            new_obs, rewards, dones, infos = env.step(env_actions)
            next_raw, known = self.pipeline.raw_next(new_obs, dones, infos)
            check_finite("observation", next_raw, where)
            check_finite("reward", self.pipeline.raw_rewards(rewards), where)
            trajectory.add(
                policy_obs=obs,
                raw_obs=raw,
                actions=actions,
                log_probs=log_probs,
                env_actions=env_actions,
                next_raw=next_raw,
                known=known,
                rewards=self.pipeline.raw_rewards(rewards),
                dones=dones,
                branch=branch,
            )
            if not on_real_steps(new_obs, dones, infos, env.num_envs):
                return None
            obs = new_obs
        if not np.any(trajectory.branch):
            return _no_groups(obs, old_policy, self.group_size)
        return self._probe(old_policy, env, trajectory, noise)

    def _branch_points(self) -> np.ndarray:
        """Which envs branch at this step: ``branch_fraction`` of the steps, evenly spaced."""
        self._branch_progress += self.branch_fraction
        branch = self._branch_progress >= 1.0
        self._branch_progress[branch] -= 1.0
        return branch

    def _probe(self, old_policy: OldPolicy, env: VecEnv, trajectory: Trajectory, noise: th.Tensor) -> GroupRollout:
        """
        Score the members of every root, in named steps: draw the members' first actions; read the real action's run
        off the real trajectory; plan which members to simulate (what is unknown, and one audit per env); simulate
        them; gather each member's run and score it.
        """
        roots = Roots.of(trajectory)
        members = self._draw_members(old_policy, roots)
        real_runs, real_known = self._real_runs(old_policy, trajectory, roots)
        plan = plan_probes(members, real_known, roots.env)
        start = time.process_time()
        simulated, probe_steps = self._simulate(old_policy, env, trajectory, noise, roots, members, plan)
        probe_cpu_s = time.process_time() - start
        runs, run_of = plan.gather(real_runs, simulated)
        returns = self._member_returns(runs, run_of, plan.distinct, old_policy.gamma)
        samples = [_first_actions(roots, members)]
        if self.train_continuations and len(runs.rewards):
            samples.append(_continuations(runs, run_of, returns, self.horizon))
        return GroupRollout(
            **_join(samples),
            returns=returns,
            weights=members.weights,
            distinct=plan.distinct,
            probe_steps=probe_steps,
            probe_cpu_s=probe_cpu_s,
        )

    def _draw_members(self, old_policy: OldPolicy, roots: Roots) -> Members:
        """Member 0 of every root takes the real env's action, the others their own samples of pi_old (or, exhaustive,
        every action once): :func:`~grpo_zoo.groups.sampling.sample_members`."""
        policy = old_policy.policy
        with th.no_grad():
            actions, log_probs, weights, real_member = sample_members(
                policy,
                obs_as_tensor(roots.policy_obs, policy.device),  # type: ignore[arg-type]
                th.as_tensor(roots.real_actions, device=policy.device),
                self.group_size,
                self.exhaustive,
            )
        member_actions = actions.cpu().numpy()  # [n_roots, G, *action_shape]
        n_roots, group_size = member_actions.shape[:2]
        flat_actions = member_actions.reshape(n_roots * group_size, *member_actions.shape[2:])
        env_actions = old_policy.env_actions(flat_actions.astype(policy.action_space.dtype, copy=False))
        return Members(
            actions=member_actions,
            env_actions=env_actions.reshape(n_roots, group_size, *env_actions.shape[1:]),
            log_probs=log_probs.cpu().numpy(),
            weights=weights.cpu().numpy(),
            real_member=real_member.cpu().numpy(),
        )

    def _real_runs(self, old_policy: OldPolicy, trajectory: Trajectory, roots: Roots) -> tuple[Runs, np.ndarray]:
        """
        The run of the real action's member at each root, read off the real trajectory: known when its horizon (or
        its episode) ends within the rollout and every transition it needs is known.

        :return: the runs (one per root), and where they are known [n_roots]
        """
        step_rewards, usable = _real_step_rewards(old_policy, trajectory)  # [T, n_envs] each
        dones = np.stack(trajectory.dones)  # [T, n_envs]
        n_steps = len(dones)
        rewards = np.full((len(roots), self.horizon), np.nan)
        running = np.ones(len(roots), dtype=bool)  # not ended yet
        known = np.ones(len(roots), dtype=bool)
        steps = np.minimum(roots.t[:, None] + np.arange(self.horizon), n_steps - 1)  # [n_roots, H]
        for k in range(self.horizon):
            inside = roots.t + k < n_steps
            t = steps[:, k]
            known &= ~running | (inside & usable[t, roots.env])
            rewards[running & inside, k] = step_rewards[t, roots.env][running & inside]
            running &= ~(inside & dones[t, roots.env])
        runs = Runs(rewards)
        if self.train_continuations:
            runs.observations = take(trajectory.stacked("policy_obs"), (steps, roots.env[:, None]))
            runs.actions = np.stack(trajectory.actions)[steps, roots.env[:, None]]
            runs.log_probs = np.stack(trajectory.log_probs)[steps, roots.env[:, None]]
        return runs, known

    def _simulate(
        self,
        old_policy: OldPolicy,
        env: VecEnv,
        trajectory: Trajectory,
        noise: th.Tensor,
        roots: Roots,
        members: Members,
        plan: ProbePlan,
    ) -> tuple[Runs, int]:
        """
        Run the plan's simulated members from their roots for ``horizon`` steps (audit-only ones for one step),
        following pi_old with the real steps' noise (common random numbers).

        :param noise: The uniform numbers of every real step (and of the steps past the rollout's end), [T + H, n_envs, width]
        :return: The simulated members' runs, [n_sim], and the probe steps taken
        """
        assert self.pipeline is not None
        n_members = len(plan.sim_root)
        runs = Runs(np.full((n_members, self.horizon), np.nan))
        if n_members == 0:
            return runs, 0
        m_t, m_env = roots.t[plan.sim_root], roots.env[plan.sim_root]
        layout = EnvSlices(m_env, env.num_envs)
        state = take(trajectory.stacked("raw_obs"), (m_t, m_env))
        record = StepRecorder(self.train_continuations)
        record(
            take(roots.policy_obs, plan.sim_root), members.actions[plan.sim_root, plan.sim_member], np.full(n_members, np.nan)
        )
        env.env_method(
            "grpo_branch", "start", layout.split(roots.local[plan.sim_root]), layout.split(state), indices=layout.envs
        )
        active = np.ones(n_members, dtype=bool)
        step_actions, probe_steps = members.env_actions[plan.sim_root, plan.sim_member], 0
        for step in range(self.horizon):
            next_state, env_rewards, ended = _step_members(env, layout, step_actions, active, _in_probe(m_env, m_t, step))
            probe_steps += int(active.sum())
            if step == 0:
                audit = plan.audit
                _audit(trajectory, m_t[audit], m_env[audit], take(next_state, audit), env_rewards[audit], ended[audit])
                active &= ~plan.audit_only
            if active.any():  # none when this rollout's probes were only audits (no group had two actions)
                runs.rewards[active, step] = _member_rewards(
                    old_policy.reward_model,
                    take(state, active),
                    step_actions[active],
                    take(next_state, active),
                    env_rewards[active],
                    where=_in_probe(m_env[active], m_t[active], step),
                )
            active &= ~ended
            if step + 1 == self.horizon or not active.any():
                break
            state = next_state
            policy_obs = self.pipeline.to_policy(state)
            uniform = noise[th.as_tensor(m_t + step + 1), th.as_tensor(m_env)]
            actions, log_probs = policy_step(old_policy.policy, policy_obs, sample_with_noise, uniform)
            record(policy_obs, actions, log_probs)
            step_actions = old_policy.env_actions(actions.astype(old_policy.policy.action_space.dtype, copy=False))
        env.env_method("grpo_branch", "clear", indices=layout.envs)
        record.into(runs, self.horizon)
        return runs, probe_steps

    def _member_returns(self, runs: Runs, run_of: np.ndarray, distinct: np.ndarray, gamma: float) -> np.ndarray:
        """
        Every member's discounted returns-to-go, [n_roots, G, H] (with ``train_continuations``; else [n_roots, G, 1]),
        NaN once its run has ended; a group of one action scores 0 (nothing to compare).
        """
        rewards = np.full((*run_of.shape, self.horizon), np.nan)
        rewards[run_of >= 0] = runs.rewards[run_of[run_of >= 0]]
        rewards[~distinct, :, 0] = 0.0
        returns = discounted_returns_to_go(rewards, gamma)
        return returns if self.train_continuations else returns[:, :, :1]


@dataclass
class _Samples:
    """Training samples, each pointing into a block of observations of its own (see :func:`_join`)."""

    observations: Any  # [n_obs, *obs_shape] (or dict)
    obs_index: np.ndarray  # [N], rows of ``observations``
    actions: np.ndarray  # [N, *action_shape], as sampled
    log_probs: np.ndarray  # [N], log pi_old
    index: np.ndarray  # [N, 3], (root, member, step) in the returns table


def _first_actions(roots: Roots, members: Members) -> _Samples:
    """Every member's branched action (its step 0); the members of a root share its observation."""
    n_roots, group_size = members.log_probs.shape
    root = np.repeat(np.arange(n_roots), group_size)
    member = np.tile(np.arange(group_size), n_roots)
    return _Samples(
        observations=roots.policy_obs,
        obs_index=root,
        actions=members.actions.reshape(n_roots * group_size, *members.actions.shape[2:]),
        log_probs=members.log_probs.reshape(-1),
        index=np.stack([root, member, np.zeros(len(root), dtype=int)], axis=1),
    )


def _continuations(runs: Runs, run_of: np.ndarray, returns: np.ndarray, horizon: int) -> _Samples:
    """Every later step of every member's run (pi_old's own actions); the members of one run share its steps."""
    root, member, step = np.nonzero(~np.isnan(returns[:, :, 1:]))
    step += 1
    run = run_of[root, member]
    return _Samples(
        observations=merge_first_axes(runs.observations),  # [n_runs * H, *obs_shape]
        obs_index=run * horizon + step,
        actions=runs.actions[run, step],
        log_probs=runs.log_probs[run, step],
        index=np.stack([root, member, step], axis=1),
    )


def _join(samples: list[_Samples]) -> dict[str, Any]:
    """One block of samples, as :class:`GroupRollout` fields: observations concatenated, each index shifted to its row."""
    offsets = np.cumsum([0] + [_n_rows(s.observations) for s in samples[:-1]])
    return {
        "observations": concatenate([s.observations for s in samples]),
        "obs_index": np.concatenate([offset + s.obs_index for offset, s in zip(offsets, samples, strict=True)]),
        "actions": np.concatenate([s.actions for s in samples]),
        "log_probs": np.concatenate([s.log_probs for s in samples]),
        "index": np.concatenate([s.index for s in samples]),
    }


def _n_rows(obs: Any) -> int:
    return len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)


def _real_step_rewards(old_policy: OldPolicy, trajectory: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """
    Every real step's reward as members are scored (the env's, or the reward function's), and whether it can be
    used (a reward function needs the exact next observation: not a normalised terminal one).

    :return: rewards [T, n_envs] (float64), usable [T, n_envs]
    """
    dones = np.stack(trajectory.dones)  # [T, n_envs]
    if old_policy.reward_model is None:
        # float32, as a VecEnv's buffers hold them (probes are rounded alike, so both agree exactly)
        return np.stack(trajectory.rewards).astype(np.float32).astype(np.float64), np.ones_like(dones)
    n_envs = dones.shape[1]
    env_actions = np.stack(trajectory.env_actions)
    rewards = old_policy.reward_model.score(
        merge_first_axes(trajectory.stacked("raw_obs")),
        merge_first_axes(env_actions),
        merge_first_axes(trajectory.stacked("next_raw")),
        where=lambda i: at_rollout_step(i // n_envs)(i % n_envs),
    )
    return rewards.reshape(dones.shape), np.stack(trajectory.known)


def _step_members(
    env: VecEnv, layout: EnvSlices, actions: np.ndarray, active: np.ndarray, where: Callable[[int], str]
) -> tuple[Any, np.ndarray, np.ndarray]:
    """
    One step of every active member, each in its env's brancher (the others keep their last observation, reward 0).

    :return: next observations [n, *obs_shape] (or dict), the env's rewards [n], whether each episode ended [n]
    """
    results = env.env_method("grpo_branch", "step", layout.split(actions), layout.split(active), indices=layout.envs)
    next_state = concatenate([r[0] for r in results])
    rewards, terminated, truncated = (np.concatenate([r[i] for r in results]) for i in (1, 2, 3))
    check_finite("observation", next_state, where)
    check_finite("reward", rewards, where)
    return next_state, rewards, terminated | truncated


def _member_rewards(
    reward_model: RewardModel | None,
    state: Any,
    actions: np.ndarray,
    next_state: Any,
    env_rewards: np.ndarray,
    where: Callable[[int], str],
) -> np.ndarray:
    """A step's rewards of a batch of members, [n]: the env's (float32, as a VecEnv holds them) or the reward function's."""
    if reward_model is None:
        return env_rewards.astype(np.float32).astype(np.float64)
    return reward_model.score(state, actions, next_state, where=where)


def _audit(
    trajectory: Trajectory, t: np.ndarray, env: np.ndarray, reached: Any, rewards: np.ndarray, ended: np.ndarray
) -> None:
    """
    A member that took the real action from a root must reach what the real env reached, bit for bit; if
    not, the env's randomness or state escapes its snapshot, and every probe of it is wrong.

    :param t: Step of each audited member's root; ``env`` its env
    :param reached: Next observation of each audited member, [n, ...] (or dict)
    :param rewards: Its env reward, [n]
    :param ended: Whether its episode ended, [n]
    """
    real = take(trajectory.stacked("next_raw"), (t, env))
    if isinstance(real, dict):
        same_obs = np.all([_rows_equal(reached[key], real[key]) for key in real], axis=0)
    else:
        same_obs = _rows_equal(reached, real)
    real_rewards = np.stack(trajectory.rewards)[t, env].astype(np.float32)
    same = same_obs & (rewards.astype(np.float32) == real_rewards) & (ended == np.stack(trajectory.dones)[t, env])
    wrong = np.flatnonzero(np.stack(trajectory.known)[t, env] & ~same)
    if len(wrong):
        what = "observation" if not same_obs[wrong[0]] else "reward or episode end"
        raise ValueError(
            unbranchable_message(
                int(env[wrong[0]]),
                f"a probe that took the real env's action from the same state reached a different {what} "
                "(the env keeps state or draws random numbers outside what its snapshot holds)",
            )
        )


def _in_probe(member_env: np.ndarray, member_t: np.ndarray, step: int) -> Callable[[int], str]:
    """Where a probe step's row comes from (its member), for error messages."""
    return lambda m: f"in a probe of env {member_env[m]} branched at rollout step {member_t[m]}, at its step {step}"


def _rows_equal(a: Any, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=b.dtype).reshape(len(b), -1)
    return np.all(a == b.reshape(len(b), -1), axis=1)


def _no_groups(obs: Any, old_policy: OldPolicy, group_size: int) -> GroupRollout:
    """A rollout without a branched state (``branch_fraction`` * real steps < 1): nothing to train on."""
    space = old_policy.policy.action_space
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
        f"{reason}. Use group_mode='time' (the env steps as in PPO, episodes compared at the same time step), which "
        "works with any env and VecEnv wrapper, or group_mode='episode' (groups of envs reset with a shared seed)."
    )
