"""
The reward a learner sees replaced by a reward function of (s, a, s'): how ``ppo-shaped`` trains PPO on the
reward GRPO's state groups are scored with.

rl-zoo3 applies ``env_wrapper`` with ``make_vec_env(..., wrapper_class=...)``, i.e. *outside* the ``Monitor``, to
the training and the evaluation envs alike. So the Monitor (``rollout/ep_rew_mean``, every evaluation's score)
records the env's true reward, and only what the wrapper returns upwards (to VecNormalize and the learner) is
shaped. In a yml entry::

    env_wrapper:
      - grpo_zoo.benchmarking.shaping.ShapedReward:
          reward_function: "reward_fns.cartpole:reward"
"""

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces

from grpo_zoo.rewards import RewardModel, RewardSpec


def obs_batch(observations: Sequence[Any]) -> Any:
    """``B`` raw observations as a float32 batch ``[B, *obs_shape]`` (a dict of such batches for Dict spaces)."""
    if isinstance(observations[0], dict):
        return {key: obs_batch([obs[key] for obs in observations]) for key in observations[0]}
    return th.as_tensor(np.stack([np.asarray(obs, dtype=np.float32) for obs in observations]))


def action_batch(action_space: spaces.Space, actions: np.ndarray) -> th.Tensor:
    """
    Actions as the reward-function contract wants them: Discrete ``[B, 1]`` float, Box ``[B, action_dim]``
    clipped to the bounds (the action actually applied).

    :param action_space: the env's action space
    :param actions: ``B`` actions, shape ``[B]`` (Discrete) or ``[B, *action_shape]`` (Box)
    :return: a float32 tensor
    """
    if isinstance(action_space, spaces.Discrete):
        return th.as_tensor(np.asarray(actions, dtype=np.float32).reshape(-1, 1))
    if isinstance(action_space, spaces.Box):
        clipped = np.clip(np.asarray(actions, dtype=np.float32), action_space.low, action_space.high)
        return th.as_tensor(clipped.reshape(len(clipped), -1))
    raise ValueError(f"reward functions take Discrete or Box actions, got action space {action_space}")


class ShapedReward(gym.Wrapper):
    """
    Replace the env's reward by ``reward_function(s, a, s')`` (batched torch call with B=1), where ``s`` is the
    previous raw observation, ``a`` the action as applied and ``s'`` the raw next observation: at an episode's
    end the terminal one, which a plain gymnasium env's ``step`` returns before any auto-reset. The env's own
    reward stays in ``info["env_reward"]``.

    :param env: the env (a ``Monitor`` below keeps recording the true reward)
    :param reward_function: import path ``"package.module:function"`` or callable, or a list of them
    :param reward_weights: one weight per reward function (default: all 1)
    """

    def __init__(self, env: gym.Env, reward_function: RewardSpec, reward_weights: Sequence[float] | None = None):
        super().__init__(env)
        self.reward_model = RewardModel(reward_function, reward_weights)
        self._last_obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._last_obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        action_tensor = action_batch(self.action_space, np.asarray(action)[None])
        shaped = self.reward_model(obs_batch([self._last_obs]), action_tensor, obs_batch([obs]))
        self._last_obs = obs
        info["env_reward"] = env_reward
        return obs, float(shaped[0]), terminated, truncated, info
