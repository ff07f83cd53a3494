"""
Episode groups: the DeepSeekMath recipe for envs that cannot be branched. The n_envs are split into
groups of G that reset with one shared seed; members are compared on their own returns.
"""

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.advantages import carries_signal, discounted_returns_to_go
from grpo_zoo.groups.base import GroupRollout, OldPolicy, RealStepsCallback
from grpo_zoo.groups.batches import concatenate, stack, take
from grpo_zoo.groups.branching import attach_branchers
from grpo_zoo.groups.finite import check_finite
from grpo_zoo.groups.sampling import HeldNoise, noise_width, policy_step
from grpo_zoo.groups.vec_obs import ObsPipeline


class _Episode:
    """One member's episode: what the policy saw and did, and what it got."""

    def __init__(self) -> None:
        self.observations: list[Any] = []
        self.actions: list[np.ndarray] = []
        self.log_probs: list[float] = []
        self.rewards: list[float] = []


class EpisodeGroups:
    """
    Shared-seed episode groups (``group_mode="episode"``).

    Envs ``[k*G, (k+1)*G)`` form group k. A group resets all its members with one seed, each runs its episode
    with its own policy samples, and finished members wait (they are not stepped, so their idle time is
    neither simulated nor counted) until the whole group is done. No group starts once the rollout has its
    ``n_steps * n_envs`` real steps; the running ones finish their episodes. On an env without a time limit
    they are cut after another ``n_steps`` steps per env and scored as truncated (their members are all at
    the same step, so their partial returns compare fairly).

    :param group_size: G, members per group; ``n_envs`` must be a multiple of it
    :param noise_hold: After a rollout without signal (every group tied), the steps for which a member keeps the
        random number its actions are drawn from (each action still a sample of pi_old(.|s), but persistent: see
        :class:`~grpo_zoo.groups.sampling.HeldNoise`); once rollouts carry signal, every action is drawn anew. 1 never
        holds
    :param seed: Seed of the shared reset seeds
    """

    def __init__(self, group_size: int, noise_hold: int = 1, seed: int | None = None):
        self.group_size = group_size
        self.noise_hold = noise_hold
        self.explore = True  # the last rollout carried no signal: hold the noise
        self.seed_rng = np.random.default_rng(seed)
        self.pipeline: ObsPipeline | None = None
        self.has_time_limit = True

    def attach(self, env: VecEnv) -> None:
        if env.num_envs % self.group_size != 0:
            suggestion = self.group_size * max(1, env.num_envs // self.group_size)
            raise ValueError(
                f"group_mode='episode' splits the envs into groups of `group_size`: n_envs={env.num_envs} is not a "
                f"multiple of group_size={self.group_size}. Use n_envs={suggestion} or another group_size."
            )
        self.pipeline = ObsPipeline(env)
        attach_branchers(env)
        self.has_time_limit = all(limit is not None for limit in env.env_method("grpo_branch", "max_episode_steps"))
        if not self.has_time_limit:
            warnings.warn(
                "group_mode='episode': the env has no time limit, so an episode may never end. Episodes still running "
                "n_steps steps after a rollout's budget are cut and scored as truncated; wrap the env in "
                "gymnasium.wrappers.TimeLimit (or pass max_episode_steps to gym.make) to compare whole episodes.",
                stacklevel=2,
            )

    def collect(
        self, old_policy: OldPolicy, env: VecEnv, last_obs: Any, n_rollout_steps: int, on_real_steps: RealStepsCallback
    ) -> GroupRollout | None:
        assert self.pipeline is not None, "attach() the env first"
        n_envs, group_size = env.num_envs, self.group_size
        budget = n_rollout_steps * n_envs
        # Past this, running episodes are cut (only reachable without a time limit)
        cut_at = np.inf if self.has_time_limit else budget + n_rollout_steps * n_envs
        collected = 0
        raw_obs: list[Any] = [None] * n_envs
        episodes = [_Episode() for _ in range(n_envs)]
        finished: list[list[_Episode]] = []
        alive = np.zeros(n_envs, dtype=bool)
        for group in range(n_envs // group_size):
            self._reset_group(env, group, raw_obs, episodes, alive)
        hold = self.noise_hold if self.explore else 1
        noise = HeldNoise(n_envs, noise_width(old_policy.policy.action_space), hold, old_policy.policy.device)

        while alive.any():
            running = np.flatnonzero(alive)
            raw = stack([raw_obs[i] for i in running])
            where = _in_episode(running, episodes)
            check_finite("observation", raw, where)  # before the policy sees it
            policy_obs = self.pipeline.to_policy(raw, update_stats=True)
            starts = np.array([not episodes[i].rewards for i in range(n_envs)])
            actions_np, log_probs = policy_step(old_policy.policy, policy_obs, noise.sample, starts, running)
            env_actions = old_policy.env_actions(actions_np)

            # Only running members are stepped, through their outermost wrapper (Monitor included) and
            # without the VecEnv's auto-reset
            all_actions = np.zeros((n_envs, *env_actions.shape[1:]), dtype=env_actions.dtype)
            all_actions[running] = env_actions
            steps = [s for s in env.env_method("grpo_branch", "step_if", all_actions, alive) if s is not None]
            next_raw = stack([s[0] for s in steps])
            rewards = np.array([s[1] for s in steps], dtype=np.float64)
            dones = np.array([s[2] or s[3] for s in steps])
            infos = [s[4] for s in steps]
            collected += len(running)
            check_finite("observation", next_raw, where)
            check_finite("reward", rewards, where)
            if old_policy.reward_model is not None:
                rewards = old_policy.reward_model.score(raw, env_actions, next_raw, where)
            if not on_real_steps(None, dones, infos, len(running)):
                return None

            for j, i in enumerate(running):
                episode = episodes[i]
                episode.observations.append(take(policy_obs, j))
                episode.actions.append(actions_np[j])
                episode.log_probs.append(float(log_probs[j]))
                episode.rewards.append(float(rewards[j]))
                raw_obs[i] = steps[j][0]
                alive[i] = not dones[j]
            if collected >= cut_at:
                alive[:] = False  # cut: scored as truncated

            for group in {int(i) // group_size for i in running}:
                members = list(range(group * group_size, (group + 1) * group_size))
                if not alive[members].any():
                    finished.append([episodes[i] for i in members])
                    if collected < budget:
                        self._reset_group(env, group, raw_obs, episodes, alive)
        rollout = self._rollout(finished, old_policy.gamma)
        if len(rollout.returns):  # a rollout in which no episode ended says nothing either way
            self.explore = not carries_signal(rollout.returns)
        return rollout

    def _reset_group(self, env: VecEnv, group: int, raw_obs: list[Any], episodes: list[_Episode], alive: np.ndarray) -> None:
        seed = int(self.seed_rng.integers(2**31 - 1))
        members = list(range(group * self.group_size, (group + 1) * self.group_size))
        resets = env.env_method("reset", seed=seed, indices=members)
        for i, (obs, _info) in zip(members, resets, strict=True):
            raw_obs[i] = obs
            episodes[i] = _Episode()
            alive[i] = True

    def _rollout(self, groups: list[list[_Episode]], gamma: float) -> GroupRollout:
        """The finished groups as samples and a table of returns-to-go, [n_groups, G, longest episode]."""
        longest = max(len(episode.rewards) for group in groups for episode in group)
        rewards = np.full((len(groups), self.group_size, longest), np.nan)
        index = []
        for g, group in enumerate(groups):
            for m, episode in enumerate(group):
                length = len(episode.rewards)
                rewards[g, m, :length] = episode.rewards
                index.append(np.stack([np.full(length, g), np.full(length, m), np.arange(length)], axis=1))
        episodes = [episode for group in groups for episode in group]
        n_samples = sum(len(episode.rewards) for episode in episodes)
        return GroupRollout(
            observations=concatenate([stack(episode.observations) for episode in episodes]),
            obs_index=np.arange(n_samples),
            actions=np.concatenate([np.stack(episode.actions) for episode in episodes]),
            log_probs=np.concatenate([np.array(episode.log_probs) for episode in episodes]),
            index=np.concatenate(index),
            returns=discounted_returns_to_go(rewards, gamma),
            weights=np.full((len(groups), self.group_size), 1.0 / self.group_size),
            # Members of an episode group always act on their own
            distinct=np.ones(len(groups), dtype=bool),
        )


def _in_episode(running: np.ndarray, episodes: list[_Episode]) -> Callable[[int], str]:
    """Where row j of a batch of running members comes from (its env and the step of its episode), for error messages."""
    return lambda j: f"for env {running[j]} at step {len(episodes[running[j]].rewards)} of its episode"
