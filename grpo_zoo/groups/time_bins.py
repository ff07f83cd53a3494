"""
Time-binned groups (GPG, arXiv 2510.03679): every episode of a rollout is a member, and the group of a step is
every member at the same episode time step. No branching and no shared seed: the VecEnv steps as in PPO.
"""

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.advantages import carries_signal, discounted_returns_to_go
from grpo_zoo.groups.base import GroupRollout, OldPolicy, RealStepsCallback
from grpo_zoo.groups.batches import concatenate, stack, take
from grpo_zoo.groups.finite import at_rollout_step, check_finite
from grpo_zoo.groups.sampling import HeldNoise, noise_width, policy_step
from grpo_zoo.groups.vec_obs import ObsPipeline, original_rewards


class _Episode:
    """One env's episode: what the policy saw and did at each of its time steps, and what it got."""

    def __init__(self) -> None:
        self.observations: list[Any] = []
        self.actions: list[np.ndarray] = []
        self.log_probs: list[float] = []
        self.rewards: list[float] = []


class TimeBins:
    """
    GPG's time-binned baselines (``group_mode="time"``).

    The ``n_envs`` step with pi_old exactly as PPO's do (auto-reset, any VecEnv wrapper, frame stacks included).
    Each finished episode is one member; the baseline of its step t is the mean discounted return-to-go of every
    member that reached step t in the rollout (GRPO's ``supervision="process"``), so a step is compared with the
    steps taken at the same time of other episodes: the time limit cuts them alike, and no critic is needed.

    An episode still running when the rollout ends is carried into the next rollout: its steps are trained once
    it has ended, on their whole return-to-go (no critic to bootstrap a cut one), with the log-probabilities of
    the policy that took them. An episode that takes more than ``n_steps`` steps is thus trained a rollout or
    more after its first steps; a rollout in which no episode ended has nothing to train on (GRPO skips the update).

    :param noise_hold: After a rollout without signal (every comparison tied, or no episode ended), the steps for
        which an env keeps the random number its actions are drawn from (each action still a sample of pi_old(.|s),
        but persistent: see :class:`~grpo_zoo.groups.sampling.HeldNoise`); once rollouts carry signal, every action is
        drawn anew (unbiased policy gradients). 1 never holds
    :param seed: Unused (the noise comes from torch's generator, seeded by GRPO)
    """

    def __init__(self, noise_hold: int = 1, seed: int | None = None):
        self.noise_hold = noise_hold
        self.noise: HeldNoise | None = None
        self.explore = True  # the last rollout carried no signal: hold the noise
        self.pipeline: ObsPipeline | None = None
        self.env: VecEnv | None = None
        self.running: list[_Episode] = []
        self._last_obs: Any = None

    def attach(self, env: VecEnv) -> None:
        self.env = env
        self.running = [_Episode() for _ in range(env.num_envs)]
        self._last_obs = None

    def collect(
        self, old_policy: OldPolicy, env: VecEnv, last_obs: Any, n_rollout_steps: int, on_real_steps: RealStepsCallback
    ) -> GroupRollout | None:
        policy = old_policy.policy
        if last_obs is not self._last_obs or self.noise is None:
            # The env was reset since the last rollout (a new learn()): the carried episodes are gone
            self.running = [_Episode() for _ in range(env.num_envs)]
            self.noise = HeldNoise(env.num_envs, noise_width(policy.action_space), self.noise_hold, policy.device)
            self.explore = True
        self.noise.hold = self.noise_hold if self.explore else 1
        pipeline = self._pipeline(env) if old_policy.reward_model is not None else None
        finished: list[_Episode] = []
        obs = last_obs
        for t in range(n_rollout_steps):
            where = at_rollout_step(t)
            if t == 0:
                check_finite("observation", obs, where)  # the first one the policy sees; the others as they arrive
            starts = np.array([not episode.rewards for episode in self.running])
            actions, log_probs = policy_step(policy, obs, self.noise.sample, starts)  # as sampled (Box: flat)
            env_actions = old_policy.env_actions(actions)  # in the action space's shape, clipped
            raw = pipeline.raw(obs) if pipeline is not None else None
            new_obs, rewards, dones, infos = env.step(env_actions)
            check_finite("observation", new_obs, where)
            if pipeline is not None:
                next_raw, _ = pipeline.raw_next(new_obs, dones, infos)
                rewards = old_policy.reward_model.score(raw, env_actions, next_raw, where)  # type: ignore[union-attr]
            else:
                rewards = original_rewards(env, rewards)
                check_finite("reward", rewards, where)
            for i, episode in enumerate(self.running):
                episode.observations.append(take(obs, i))
                episode.actions.append(actions[i])
                episode.log_probs.append(float(log_probs[i]))
                episode.rewards.append(float(rewards[i]))
                if dones[i]:
                    finished.append(episode)
                    self.running[i] = _Episode()
            if not on_real_steps(new_obs, dones, infos, env.num_envs):
                return None
            obs = new_obs
        self._last_obs = obs
        rollout = self._rollout(finished, old_policy, obs)
        if len(rollout.returns):  # a rollout in which no episode ended says nothing either way
            self.explore = not carries_signal(rollout.returns)
        return rollout

    def _pipeline(self, env: VecEnv) -> ObsPipeline:
        """The raw observations a reward function scores (made on first use: only reward functions need them)."""
        if self.pipeline is None:
            self.pipeline = ObsPipeline(env)
        return self.pipeline

    @staticmethod
    def _rollout(episodes: list[_Episode], old_policy: OldPolicy, obs: Any) -> GroupRollout:
        """One group whose members are the finished episodes: returns-to-go [1, n_episodes, last time step]."""
        space = old_policy.policy.action_space
        if not episodes:
            return GroupRollout(
                observations=take(obs, slice(0, 0)),
                obs_index=np.zeros(0, dtype=int),
                actions=np.zeros((0, *(space.shape or ())), dtype=space.dtype),
                log_probs=np.zeros(0),
                index=np.zeros((0, 3), dtype=int),
                returns=np.zeros((0, 2, 1)),
                weights=np.zeros((0, 2)),
                distinct=np.zeros(0, dtype=bool),
            )
        end = max(len(e.rewards) for e in episodes)
        # A lone episode is padded with an empty member: the table needs G >= 2 (it then compares nothing)
        n_members = max(2, len(episodes))
        rewards = np.full((1, n_members, end), np.nan)
        index = []
        for m, episode in enumerate(episodes):
            steps = np.arange(len(episode.rewards))
            rewards[0, m, : len(steps)] = episode.rewards
            index.append(np.stack([np.zeros_like(steps), np.full_like(steps, m), steps], axis=1))
        return GroupRollout(
            observations=concatenate([stack(e.observations) for e in episodes]),
            obs_index=np.arange(sum(len(e.rewards) for e in episodes)),
            actions=np.concatenate([np.stack(e.actions) for e in episodes]),
            log_probs=np.concatenate([np.array(e.log_probs) for e in episodes]),
            index=np.concatenate(index),
            returns=discounted_returns_to_go(rewards, old_policy.gamma),
            weights=np.full((1, n_members), 1.0 / n_members),
            # Members start from different states: a tie says nothing of whether the reward tells actions apart
            distinct=np.zeros(1, dtype=bool),
        )
