"""What a group mechanism provides to GRPO, and helpers both mechanisms share."""

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.grpo.buffer import GroupRolloutBuffer

if TYPE_CHECKING:
    from grpo_zoo.grpo.grpo import GRPO


class GroupCollector(Protocol):
    """Fills a rollout with scored groups. GRPO's ``train()`` does not depend on which one."""

    def attach(self, env: VecEnv) -> None:
        """Check that ``env`` suits this kind of group (raise ``ValueError`` naming the fix) and prepare it."""

    def collect(
        self, model: "GRPO", env: VecEnv, callback: BaseCallback, buffer: GroupRolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """Collect at least ``n_rollout_steps`` real steps per env; False if a callback stopped training."""


def to_env_actions(model: "GRPO", actions: np.ndarray) -> np.ndarray:
    """Actions as the env receives them: Box actions clipped (or unscaled) to the bounds, as in SB3."""
    if isinstance(model.action_space, spaces.Box):
        if model.policy.squash_output:
            return model.policy.unscale_action(actions)
        return np.clip(actions, model.action_space.low, model.action_space.high)
    return actions


def action_tensor(model: "GRPO", env_actions: np.ndarray) -> th.Tensor:
    """Actions as reward functions receive them: float32, [B, 1] for Discrete, [B, action_dim] otherwise."""
    return th.as_tensor(np.asarray(env_actions, dtype=np.float32).reshape(len(env_actions), -1))


def obs_tensor(obs: Any) -> Any:
    """Observations as reward functions receive them: float32 tensors (a dict of them for Dict spaces)."""
    if isinstance(obs, dict):
        return {key: th.as_tensor(np.asarray(value, dtype=np.float32)) for key, value in obs.items()}
    return th.as_tensor(np.asarray(obs, dtype=np.float32))


def take(obs: Any, index: Any) -> Any:
    """Index a batch of observations (array or dict of arrays)."""
    if isinstance(obs, dict):
        return {key: value[index] for key, value in obs.items()}
    return obs[index]


def stack(observations: list[Any]) -> Any:
    """Stack a list of observations (arrays or dicts) into a batch."""
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


def flatten_members(obs: Any) -> Any:
    """[n_envs, G, *obs_shape] -> [n_envs * G, *obs_shape] (array or dict of arrays)."""
    if isinstance(obs, dict):
        return {key: value.reshape(-1, *value.shape[2:]) for key, value in obs.items()}
    return obs.reshape(-1, *obs.shape[2:])


def repeat_members(obs: Any, group_size: int) -> Any:
    """[n_envs, *obs_shape] -> [n_envs, G, *obs_shape]: every member starts at its env's state."""
    if isinstance(obs, dict):
        return {key: np.repeat(value[:, None], group_size, axis=1) for key, value in obs.items()}
    return np.repeat(obs[:, None], group_size, axis=1)
