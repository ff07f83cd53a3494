"""
The contract between GRPO and a group mechanism.

GRPO owns the SB3 side of a rollout (callbacks, ``num_timesteps``, the episode-info buffer, ``_last_obs``);
a collector steps the env its own way and hands back scored groups:

- it gets an :class:`OldPolicy` (pi_old, how its actions reach the env, how a transition is scored);
- it reports every batch of real steps through ``on_real_steps`` (False: a callback asked to stop);
- it returns a :class:`GroupRollout`: the training samples, each pointing to its member's return-to-go in a
  ``[n_groups, G, T]`` table. ``grpo_zoo.advantages.group_advantages`` turns that table into advantages.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.rewards import RewardModel

# on_real_steps(new_obs or None, dones, infos, n_stepped) -> keep going
RealStepsCallback = Callable[[Any, np.ndarray, list[dict[str, Any]], int], bool]


@dataclass
class OldPolicy:
    """
    pi_old, with the reward and the discount that score its actions: what a collector needs of the learner.

    :param policy: pi_old (in evaluation mode)
    :param reward_model: The reward that scores members, or None for the env's reward
    :param gamma: Discount factor of the scores
    """

    policy: ActorCriticPolicy
    reward_model: RewardModel | None
    gamma: float

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """
        Actions as the env receives them, as SB3 makes them (``ActorCriticPolicy.forward``, ``collect_rollouts``): in
        the action space's shape, Box actions clipped (or unscaled) to the bounds.

        :param actions: Actions as the policy sampled them, [B, ...] (Box actions flat: [B, action_dim])
        :return: [B, *action_space.shape]
        """
        action_space = self.policy.action_space
        actions = actions.reshape((-1, *(action_space.shape or ())))  # e.g. [B, 4] -> [B, 2, 2] for a Box of shape (2, 2)
        if isinstance(action_space, spaces.Box):
            if self.policy.squash_output:
                return self.policy.unscale_action(actions)
            return np.clip(actions, action_space.low, action_space.high)
        return actions


@dataclass
class GroupRollout:
    """
    Scored groups of one rollout.

    :param observations: Policy observations, [n_obs, *obs_shape] (or dict): members of a state group share one
    :param obs_index: Row of ``observations`` of each sample, [N]
    :param actions: Each sample's action as the policy sampled it, [N, *action_shape] (Box actions flat,
        [N, action_dim], as SB3's rollout buffer holds them)
    :param log_probs: log pi_old of each sample's action, [N]
    :param index: (group, member, step) of each sample in ``returns``, [N, 3]
    :param returns: Discounted returns-to-go, [n_groups, G, T], NaN where a member has no step
    :param weights: Member weights in the surrogate and the baseline, [n_groups, G], rows summing to 1
    :param distinct: Whether the env received different first actions within each group, [n_groups]
    :param probe_steps: Simulator steps spent on probes (not real steps)
    :param probe_cpu_s: CPU seconds spent running them
    """

    observations: Any
    obs_index: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    index: np.ndarray
    returns: np.ndarray
    weights: np.ndarray
    distinct: np.ndarray
    probe_steps: int = 0
    probe_cpu_s: float = 0.0


class GroupCollector(Protocol):
    """Fills a rollout with scored groups. GRPO's ``train()`` does not depend on which one."""

    def attach(self, env: VecEnv) -> None:
        """Check that ``env`` suits this kind of group (raise ``ValueError`` naming the fix) and prepare it."""

    def collect(
        self, old_policy: OldPolicy, env: VecEnv, last_obs: Any, n_rollout_steps: int, on_real_steps: RealStepsCallback
    ) -> GroupRollout | None:
        """
        :param last_obs: The VecEnv's last observation (state groups continue from it)
        :param n_rollout_steps: Real steps per env to collect
        :return: The scored groups, or None if a callback stopped training
        """
