"""
The reward a learner sees replaced by a reward function of (s, a, s'): how ``ppo-shaped`` trains PPO on the
reward GRPO's state groups are scored with.

rl-zoo3 applies ``vec_env_wrapper`` to the VecEnv it builds, whose envs each have their ``Monitor`` inside, and
VecNormalize (if any) outside it. So the Monitor (``rollout/ep_rew_mean``, every evaluation's score) records the
env's true reward, and only what the wrapper returns upwards (to VecNormalize and the learner) is shaped. In a yml
entry::

    vec_env_wrapper:
      - grpo_zoo.benchmarking.shaping.ShapedReward:
          reward_function: "reward_fns.cartpole:reward"
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

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


class ShapedReward(VecEnvWrapper):
    """
    Replace the VecEnv's rewards by ``reward_function(s, a, s')``, one batched call per step of all envs: ``s`` the
    previous raw observation, ``a`` the action as applied and ``s'`` the raw next observation (at an episode's end
    the terminal one, ``infos[i]["terminal_observation"]``). Each env's own reward stays in
    ``info["env_reward"]``.

    :param venv: the VecEnv (its Monitors keep recording the true reward)
    :param reward_function: import path ``"package.module:function"`` or callable, or a list of them
    :param reward_weights: one weight per reward function (default: all 1)
    """

    def __init__(self, venv: VecEnv, reward_function: RewardSpec, reward_weights: Sequence[float] | None = None):
        super().__init__(venv)
        self.reward_model = RewardModel(reward_function, reward_weights)
        self._last_obs: Any = None
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._last_obs = obs
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, env_rewards, dones, infos = self.venv.step_wait()
        assert self._actions is not None, "step_async first"
        observations = list(_rows(obs))
        for i in np.flatnonzero(dones):
            observations[i] = infos[i]["terminal_observation"]
        shaped = self.reward_model(
            obs_batch(list(_rows(self._last_obs))), action_batch(self.action_space, self._actions), obs_batch(observations)
        )
        for info, env_reward in zip(infos, env_rewards, strict=True):
            info["env_reward"] = float(env_reward)
        self._last_obs = obs
        return obs, shaped.astype(np.float32), dones, infos


def _rows(obs: Any) -> list[Any]:
    """A VecEnv's batch of observations as one observation per env (dicts for Dict spaces)."""
    if isinstance(obs, dict):
        n = len(next(iter(obs.values())))
        return [{key: value[i] for key, value in obs.items()} for i in range(n)]
    return list(obs)
