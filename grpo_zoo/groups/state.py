"""
State groups: branch the env at visited states and score each member's own action on its own outcome.
"""

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.advantages import discounted_returns_to_go
from grpo_zoo.groups.base import Actor, GroupRollout, RealStepsCallback
from grpo_zoo.groups.batches import concatenate, take
from grpo_zoo.groups.branching import attach_branchers
from grpo_zoo.groups.finite import at_rollout_step, check_finite
from grpo_zoo.groups.runs import EnvSlices, Runs, StepRecorder, Trajectory, first_equal_member, flatten
from grpo_zoo.groups.sampling import noise_width, policy_step, sample_members, sample_with_noise
from grpo_zoo.groups.vec_obs import ObsPipeline


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
        self._credit = np.zeros(0)

    def attach(self, env: VecEnv) -> None:
        """Attach a brancher to every env and prove that its snapshots are exact."""
        self.pipeline = ObsPipeline(env)
        attach_branchers(env)
        for index, reason in enumerate(env.env_method("grpo_branch", "verify")):
            if reason is not None:
                raise ValueError(unbranchable_message(index, reason))
        # Where each env's evenly spaced branch points start
        self._credit = self.rng.uniform(size=env.num_envs)

    def collect(
        self, actor: Actor, env: VecEnv, last_obs: Any, n_rollout_steps: int, on_real_steps: RealStepsCallback
    ) -> GroupRollout | None:
        assert self.pipeline is not None, "attach() the env first"
        policy = actor.policy
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
            env_actions = actor.env_actions(actions.astype(policy.action_space.dtype, copy=False))
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
            return _no_groups(obs, actor, self.group_size)
        return self._probe(actor, env, trajectory, noise)

    def _branch_points(self) -> np.ndarray:
        """Which envs branch at this step: ``branch_fraction`` of the steps, evenly spaced."""
        self._credit += self.branch_fraction
        branch = self._credit >= 1.0
        self._credit[branch] -= 1.0
        return branch

    def _probe(self, actor: Actor, env: VecEnv, trajectory: Trajectory, noise: th.Tensor) -> GroupRollout:
        """Score the members of every root: read off the real trajectory, or simulated for ``horizon`` steps."""
        policy, device = actor.policy, actor.policy.device
        # Roots env by env, each env's in the order it saved them (the order of its brancher's roots)
        root_env, root_t = (a.astype(int) for a in np.nonzero(np.stack(trajectory.branch).T))
        n_roots = len(root_t)
        policy_obs = take(trajectory.stacked("policy_obs"), (root_t, root_env))
        with th.no_grad():
            actions, first_log_probs, weights, real_member = sample_members(
                policy,
                obs_as_tensor(policy_obs, device),  # type: ignore[arg-type]
                th.as_tensor(np.stack(trajectory.actions)[root_t, root_env], device=device),
                self.group_size,
                self.exhaustive,
            )
        group_size = actions.shape[1]
        member_actions = actions.cpu().numpy()  # [n_roots, G, *action_shape]
        flat_actions = member_actions.reshape(n_roots * group_size, *member_actions.shape[2:])
        env_actions = actor.env_actions(flat_actions.astype(policy.action_space.dtype, copy=False))
        env_actions = env_actions.reshape(n_roots, group_size, *env_actions.shape[1:])
        representative = first_equal_member(env_actions.reshape(n_roots, group_size, -1))  # whose run each shares
        distinct = np.any(representative != 0, axis=1)
        roots = np.arange(n_roots)
        real_rep = representative[roots, real_member.cpu().numpy()]

        # Runs: the real action's member read off the real trajectory where known, the other representatives of
        # groups that compare distinct actions simulated
        real_runs, real_known = self._real_runs(actor, trajectory, root_t, root_env)
        simulate = (representative == np.arange(group_size)) & distinct[:, None]
        simulate[roots, real_rep] &= ~real_known
        # One audit step per env: the real action's member at the env's last root repeats the real step
        audit_roots = np.flatnonzero(np.r_[root_env[1:] != root_env[:-1], True])
        audit_only = np.zeros_like(simulate)
        audit_only[audit_roots, real_rep[audit_roots]] = ~simulate[audit_roots, real_rep[audit_roots]]
        sim_root, sim_member = np.nonzero(simulate | audit_only)
        start = time.process_time()
        sim_runs, probe_steps = self._simulate(
            actor,
            env,
            trajectory,
            noise,
            (root_t, root_env),
            sim_root,
            env_actions[sim_root, sim_member],
            member_actions[sim_root, sim_member],
            audit=sim_member == real_rep[sim_root],
            audit_only=audit_only[sim_root, sim_member],
        )
        probe_cpu_s = time.process_time() - start
        keep = ~audit_only[sim_root, sim_member]
        read = np.flatnonzero(real_known & distinct)
        runs = Runs.concatenate([real_runs.take(read), sim_runs.take(np.flatnonzero(keep))])
        run_of = np.full((n_roots, group_size), -1)
        run_of[read, real_rep[read]] = np.arange(len(read))
        run_of[sim_root[keep], sim_member[keep]] = len(read) + np.arange(int(keep.sum()))
        run_of = np.take_along_axis(run_of, representative, axis=1)  # members that took the same action share a run

        # Rewards of each member's run, [n_roots, G, H]; a group of one action only scores 0 (nothing to compare)
        rewards = np.full((n_roots, group_size, self.horizon), np.nan)
        rewards[run_of >= 0] = runs.rewards[run_of[run_of >= 0]]
        rewards[~distinct, :, 0] = 0.0
        returns = discounted_returns_to_go(rewards, actor.gamma)
        if not self.train_continuations:
            returns = returns[:, :, :1]

        # Samples: every member's first action; with train_continuations, every later step of its run too
        first = np.stack([np.repeat(roots, group_size), np.tile(np.arange(group_size), n_roots)], axis=1)
        index = [np.column_stack([first, np.zeros(len(first), dtype=int)])]
        obs_index = [first[:, 0]]
        sample_actions, sample_log_probs = [flat_actions], [first_log_probs.cpu().numpy().reshape(-1)]
        observations = [policy_obs]
        if self.train_continuations and len(runs.rewards):
            root, member, step = np.nonzero(~np.isnan(returns[:, :, 1:]))
            step += 1
            run = run_of[root, member]
            index.append(np.stack([root, member, step], axis=1))
            obs_index.append(n_roots + run * self.horizon + step)
            sample_actions.append(runs.actions[run, step])
            sample_log_probs.append(runs.log_probs[run, step])
            observations.append(flatten(runs.observations, (len(runs.rewards) * self.horizon,)))
        return GroupRollout(
            observations=concatenate(observations),
            obs_index=np.concatenate(obs_index),
            actions=np.concatenate(sample_actions),
            log_probs=np.concatenate(sample_log_probs),
            index=np.concatenate(index),
            returns=returns,
            weights=weights.cpu().numpy(),
            distinct=distinct,
            probe_steps=probe_steps,
            probe_cpu_s=probe_cpu_s,
        )

    def _real_runs(
        self, actor: Actor, trajectory: Trajectory, root_t: np.ndarray, root_env: np.ndarray
    ) -> tuple["Runs", np.ndarray]:
        """
        The run of the real action's member at each root, read off the real trajectory: known when its horizon (or
        its episode) ends within the rollout and every transition it needs is known.

        :return: the runs (one per root), and where they are known [n_roots]
        """
        n_steps = len(trajectory.dones)
        dones = np.stack(trajectory.dones)  # [T, n_envs]
        if actor.reward_model is None:
            # float32, as a VecEnv's buffers hold them (probes are rounded alike, so both agree exactly)
            step_rewards = np.stack(trajectory.rewards).astype(np.float32).astype(np.float64)
            usable = np.ones_like(dones)
        else:
            raw_obs, next_raw = trajectory.stacked("raw_obs"), trajectory.stacked("next_raw")
            env_actions = np.stack(trajectory.env_actions)
            n_envs = dones.shape[1]
            flat = (n_steps * n_envs,)
            step_rewards = actor.reward_model.score(
                flatten(raw_obs, flat),
                env_actions.reshape(*flat, *env_actions.shape[2:]),
                flatten(next_raw, flat),
                where=lambda i: at_rollout_step(i // n_envs)(i % n_envs),
            ).reshape(dones.shape)
            usable = np.stack(trajectory.known)
        rewards = np.full((len(root_t), self.horizon), np.nan)
        running = np.ones(len(root_t), dtype=bool)  # not ended yet
        known = np.ones(len(root_t), dtype=bool)
        steps = np.minimum(root_t[:, None] + np.arange(self.horizon), n_steps - 1)  # [n_roots, H]
        for k in range(self.horizon):
            inside = root_t + k < n_steps
            t = steps[:, k]
            known &= ~running | (inside & usable[t, root_env])
            rewards[running & inside, k] = step_rewards[t, root_env][running & inside]
            running &= ~(inside & dones[t, root_env])
        runs = Runs(rewards)
        if self.train_continuations:
            runs.observations = take(trajectory.stacked("policy_obs"), (steps, root_env[:, None]))
            runs.actions = np.stack(trajectory.actions)[steps, root_env[:, None]]
            runs.log_probs = np.stack(trajectory.log_probs)[steps, root_env[:, None]]
        return runs, known

    def _simulate(
        self,
        actor: Actor,
        env: VecEnv,
        trajectory: Trajectory,
        noise: th.Tensor,
        roots: tuple[np.ndarray, np.ndarray],
        member_root: np.ndarray,
        first_env_actions: np.ndarray,
        first_actions: np.ndarray,
        audit: np.ndarray,
        audit_only: np.ndarray,
    ) -> tuple["Runs", int]:
        """
        Run members from their roots for ``horizon`` steps, following pi_old with the real steps' noise.

        :param roots: Step and env of every root (sorted by env)
        :param member_root: Root of each simulated member (sorted by env, as the roots are)
        :param first_env_actions: Each member's first action, as the env receives it
        :param first_actions: The same, as the policy sampled it
        :param audit: Members that take the real action: their first step must repeat the real one
        :param audit_only: Members run for that one step only
        :return: The members' runs and the probe steps taken
        """
        assert self.pipeline is not None
        policy = actor.policy
        n_members = len(member_root)
        runs = Runs(np.full((n_members, self.horizon), np.nan))
        if n_members == 0:
            return runs, 0
        root_t, root_env = roots
        m_env, m_t = root_env[member_root], root_t[member_root]
        # The brancher numbers an env's roots in the order it saved them
        local_root = member_root - np.searchsorted(root_env, m_env)
        layout = EnvSlices(m_env, env.num_envs)
        state = take(trajectory.stacked("raw_obs"), (m_t, m_env))
        record = StepRecorder(self.train_continuations)
        record(take(trajectory.stacked("policy_obs"), (m_t, m_env)), first_actions, np.full(n_members, np.nan))
        env.env_method("grpo_branch", "start", layout.split(local_root), layout.split(state), indices=layout.envs)
        active = np.ones(n_members, dtype=bool)
        step_actions, probe_steps = first_env_actions, 0
        for step in range(self.horizon):
            results = env.env_method(
                "grpo_branch", "step", layout.split(step_actions), layout.split(active), indices=layout.envs
            )
            next_state = concatenate([r[0] for r in results])
            env_rewards, terminated, truncated = (np.concatenate([r[i] for r in results]) for i in (1, 2, 3))
            probe_steps += int(active.sum())
            where = _in_probe(m_env, m_t, step)
            check_finite("observation", next_state, where)  # members that are not active keep their last one
            check_finite("reward", env_rewards, where)  # 0 for them
            if step == 0:
                ended = terminated | truncated
                _audit(trajectory, m_t[audit], m_env[audit], take(next_state, audit), env_rewards[audit], ended[audit])
                active &= ~audit_only
            rewards = env_rewards.astype(np.float32).astype(np.float64)
            if actor.reward_model is not None:
                rewards = np.zeros(n_members)
                if active.any():  # none when this rollout's probes were only audits (no group had two actions)
                    rewards[active] = actor.reward_model.score(
                        take(state, active),
                        step_actions[active],
                        take(next_state, active),
                        where=_in_probe(m_env[active], m_t[active], step),
                    )
            runs.rewards[active, step] = rewards[active]
            active &= ~(terminated | truncated)
            if step + 1 == self.horizon or not active.any():
                break
            state = next_state
            policy_obs = self.pipeline.to_policy(state)
            uniform = noise[th.as_tensor(m_t + step + 1), th.as_tensor(m_env)]
            actions, log_probs = policy_step(policy, policy_obs, sample_with_noise, uniform)
            record(policy_obs, actions, log_probs)
            step_actions = actor.env_actions(actions.astype(policy.action_space.dtype, copy=False))
        env.env_method("grpo_branch", "clear", indices=layout.envs)
        record.into(runs, self.horizon)
        return runs, probe_steps


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
