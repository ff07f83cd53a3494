"""Observations below and above the VecEnv wrappers: what reward functions see and what the policy sees."""

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecCheckNan, VecEnv, VecEnvWrapper, VecMonitor, VecNormalize, VecTransposeImage

from grpo_zoo.groups.batches import map_obs

# VecEnv wrappers that do not change observations
PASS_THROUGH = (VecMonitor, VecCheckNan)


class ObsPipeline:
    """
    Replays the observation transforms of a VecEnv's wrappers on observations that did not come from
    ``VecEnv.step`` (probe and group-reset observations), with frozen statistics unless asked otherwise.

    Supported wrappers: ``VecNormalize`` (observations normalised with its running statistics),
    ``VecTransposeImage``, and the pass-through ``VecMonitor`` / ``VecCheckNan``.

    :param venv: The training VecEnv
    """

    def __init__(self, venv: VecEnv):
        self.transforms: list[VecEnvWrapper] = []
        env: Any = venv
        while isinstance(env, VecEnvWrapper):
            if isinstance(env, VecNormalize | VecTransposeImage):
                self.transforms.append(env)
            elif not isinstance(env, PASS_THROUGH):
                raise ValueError(
                    f"GRPO cannot replay the observations of VecEnv wrapper {type(env).__name__} (a wrapper that may "
                    "keep state, as a frame stack does) for state groups, episode groups or a reward_function: "
                    "supported wrappers are VecNormalize, VecTransposeImage, VecMonitor and VecCheckNan. Use "
                    "group_mode='time' with the env's reward, which steps the VecEnv as PPO does and works with any "
                    "wrapper (the zoo's frame_stack included)."
                )
            env = env.venv
        # Innermost first, the order in which VecEnv.step applies them
        self.transforms.reverse()

    def raw(self, obs: Any) -> Any:
        """
        The un-normalised observation behind ``obs``, the last one returned by the VecEnv.

        :param obs: Observation as returned by the outermost wrapper
        :return: The same observation before any VecEnv wrapper
        """
        raw = map_obs(np.array, obs)
        for wrapper in reversed(self.transforms):
            if isinstance(wrapper, VecNormalize):
                raw = wrapper.get_original_obs()
            elif isinstance(wrapper, VecTransposeImage):
                raw = _untranspose(wrapper, raw)
        return raw

    def raw_rewards(self, rewards: np.ndarray) -> np.ndarray:
        """The env's rewards behind the last ``VecEnv.step`` (before VecNormalize's scaling)."""
        for wrapper in self.transforms:
            if isinstance(wrapper, VecNormalize):
                return wrapper.get_original_reward()
        return rewards

    def raw_next(self, new_obs: Any, dones: np.ndarray, infos: list[dict[str, Any]]) -> tuple[Any, np.ndarray]:
        """
        The raw observation each env reached on the last ``VecEnv.step`` (the terminal one at an episode end).

        :return: the observations, and where they are known exactly (a terminal observation passed through
            VecNormalize is only known normalised)
        """
        raw = self.raw(new_obs)
        known = np.ones(len(dones), dtype=bool)
        for i in np.flatnonzero(dones):
            known[i] = not self.transforms and "terminal_observation" in infos[i]
            if known[i]:
                terminal = infos[i]["terminal_observation"]
                if isinstance(raw, dict):
                    for key in raw:
                        raw[key][i] = terminal[key]
                else:
                    raw[i] = terminal
        return raw, known

    def to_policy(self, raw: Any, update_stats: bool = False) -> Any:
        """
        :param raw: Batched observations as the envs return them
        :param update_stats: Update VecNormalize's running mean (for real observations only, never probes)
        :return: The observations the policy expects
        """
        obs = raw
        for wrapper in self.transforms:
            if isinstance(wrapper, VecNormalize):
                if update_stats and wrapper.training and wrapper.norm_obs:
                    _update_obs_rms(wrapper, obs)
                obs = wrapper.normalize_obs(obs)
            elif isinstance(wrapper, VecTransposeImage):
                obs = wrapper.transpose_observations(obs)
        return obs


def original_rewards(venv: VecEnv, rewards: np.ndarray) -> np.ndarray:
    """The env's rewards behind the last ``VecEnv.step`` of ``venv`` (before a VecNormalize's scaling), whatever
    its other wrappers (no observation is replayed, so a frame stack is fine)."""
    env: Any = venv
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize):
            return env.get_original_reward()
        env = env.venv
    return rewards


def _update_obs_rms(wrapper: VecNormalize, obs: Any) -> None:
    if isinstance(obs, dict):
        for key in wrapper.norm_obs_keys or []:
            wrapper.obs_rms[key].update(obs[key])  # type: ignore[index]
    else:
        wrapper.obs_rms.update(obs)  # type: ignore[union-attr]


def _untranspose(wrapper: VecTransposeImage, obs: Any) -> Any:
    if isinstance(obs, dict):
        return {key: (np.transpose(value, (0, 2, 3, 1)) if key in wrapper.image_space_keys else value)
                for key, value in obs.items()}  # fmt: skip
    return np.transpose(obs, (0, 2, 3, 1))
