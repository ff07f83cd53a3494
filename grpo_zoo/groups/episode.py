"""
Episode groups: the DeepSeekMath recipe for envs that cannot be branched. The n_envs are split into
groups of G that reset with one shared seed; members are compared on their own returns.
"""

from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.advantages import group_advantages, process_advantages
from grpo_zoo.groups.base import action_tensor, obs_tensor, stack, take, to_env_actions
from grpo_zoo.groups.branching import EnvBrancher
from grpo_zoo.groups.vec_obs import ObsPipeline
from grpo_zoo.grpo.buffer import GroupRolloutBuffer

if TYPE_CHECKING:
    from grpo_zoo.grpo.grpo import GRPO

SUPERVISION = ("outcome", "process")


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
    neither simulated nor counted) until the whole group is done. Advantages:

    - ``"outcome"``: the member's return minus the group's mean return, for every step of its episode;
    - ``"process"``: at each step t, the member's return-to-go minus that of the members still alive at t.

    :param group_size: G, members per group; ``n_envs`` must be a multiple of it
    :param supervision: "outcome" or "process"
    :param scale_rewards: "group", "batch" or "none" (batch scaling is applied by the buffer)
    :param seed: Seed of the shared reset seeds
    """

    def __init__(self, group_size: int, supervision: str, scale_rewards: str, seed: int | None = None):
        if supervision not in SUPERVISION:
            raise ValueError(f"`supervision` must be one of {SUPERVISION}, got supervision={supervision!r}")
        self.group_size = group_size
        self.supervision = supervision
        self.scale_rewards = scale_rewards
        self.seed_rng = np.random.default_rng(seed)
        self.pipeline: ObsPipeline | None = None

    def attach(self, env: VecEnv) -> None:
        if env.num_envs % self.group_size != 0:
            suggestion = self.group_size * max(1, env.num_envs // self.group_size)
            raise ValueError(
                f"group_mode='episode' splits the envs into groups of `group_size`: n_envs={env.num_envs} is not a "
                f"multiple of group_size={self.group_size}. Use n_envs={suggestion} or another group_size."
            )
        self.pipeline = ObsPipeline(env)
        for index in range(env.num_envs):
            env.set_attr("_grpo_brancher", EnvBrancher(index), indices=[index])

    def collect(
        self, model: "GRPO", env: VecEnv, callback: BaseCallback, buffer: GroupRolloutBuffer, n_rollout_steps: int
    ) -> bool:
        assert self.pipeline is not None, "attach() the env first"
        n_envs, group_size = env.num_envs, self.group_size
        target = n_rollout_steps * n_envs
        collected = 0
        raw_obs: list[Any] = [None] * n_envs
        episodes = [_Episode() for _ in range(n_envs)]
        alive = np.zeros(n_envs, dtype=bool)
        for group in range(n_envs // group_size):
            self._reset_group(env, group, raw_obs, episodes, alive)

        while alive.any():
            running = np.flatnonzero(alive)
            raw = stack([raw_obs[i] for i in running])
            policy_obs = self.pipeline.to_policy(raw, update_stats=True)
            with th.no_grad():
                distribution = model.policy.get_distribution(obs_as_tensor(policy_obs, model.device))  # type: ignore[arg-type]
                actions = distribution.get_actions()
                log_probs = distribution.log_prob(actions).cpu().numpy()
            actions_np = actions.cpu().numpy()
            env_actions = to_env_actions(model, actions_np)

            # Change from the parent: only running members are stepped, through their outermost wrapper
            # (Monitor included) and without the VecEnv's auto-reset.
            all_actions = np.zeros((n_envs, *env_actions.shape[1:]), dtype=env_actions.dtype)
            all_actions[running] = env_actions
            steps = [s for s in env.env_method("grpo_branch", "step_if", all_actions, alive) if s is not None]
            next_raw = stack([s[0] for s in steps])
            env_rewards = np.array([s[1] for s in steps], dtype=np.float64)
            dones = np.array([s[2] or s[3] for s in steps])
            infos = [s[4] for s in steps]
            model.num_timesteps += len(running)
            collected += len(running)
            rewards = env_rewards
            if model.reward_model is not None:
                rewards = model.reward_model(obs_tensor(raw), action_tensor(model, env_actions), obs_tensor(next_raw))

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            model._update_info_buffer(infos, dones)

            for j, i in enumerate(running):
                episode = episodes[i]
                episode.observations.append(take(policy_obs, j))
                episode.actions.append(actions_np[j])
                episode.log_probs.append(float(log_probs[j]))
                episode.rewards.append(float(rewards[j]))
                raw_obs[i] = steps[j][0]
                alive[i] = not dones[j]

            for group in {int(i) // group_size for i in running}:
                members = range(group * group_size, (group + 1) * group_size)
                if not alive[list(members)].any():
                    self._finish_group(model, buffer, [episodes[i] for i in members])
                    if collected < target:
                        self._reset_group(env, group, raw_obs, episodes, alive)
        return True

    def _reset_group(self, env: VecEnv, group: int, raw_obs: list[Any], episodes: list[_Episode], alive: np.ndarray) -> None:
        seed = int(self.seed_rng.integers(2**31 - 1))
        members = list(range(group * self.group_size, (group + 1) * self.group_size))
        resets = env.env_method("reset", seed=seed, indices=members)
        for i, (obs, _info) in zip(members, resets, strict=True):
            raw_obs[i] = obs
            episodes[i] = _Episode()
            alive[i] = True

    def _finish_group(self, model: "GRPO", buffer: GroupRolloutBuffer, group: list[_Episode]) -> None:
        returns = np.array([sum(e.rewards) for e in group])
        scale = "none" if self.scale_rewards == "batch" else self.scale_rewards
        if self.supervision == "outcome":
            member_advantages = group_advantages(returns[None, :], scale)[0]
            advantages = [np.full(len(e.rewards), a) for e, a in zip(group, member_advantages, strict=True)]
        else:
            advantages = process_advantages([np.array(e.rewards) for e in group], model.gamma, scale)
        buffer.note_group_scores(returns)
        for episode, advantage in zip(group, advantages, strict=True):
            buffer.add_samples(stack(episode.observations), np.stack(episode.actions), np.array(episode.log_probs), advantage)
