"""dynamic_sampling (DAPO): a rollout without signal is acted on (more collected, every step counted), not trained on."""

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from grpo_zoo import GRPO


class RareSuccessEnv(gym.Env):
    """Episodes of 4 steps, reward 1 at the end only when every action was 1 (1 in 16 for a uniform policy)."""

    observation_space = spaces.Box(0, 4, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.ok = 0, True
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        self.ok &= int(action) == 1
        done = self.t == 4
        return np.array([self.t], dtype=np.float32), float(done and self.ok), done, False, {}


class ConstantEnv(RareSuccessEnv):
    def step(self, action):
        obs, _, done, truncated, info = super().step(action)
        return obs, -1.0, done, truncated, info


class CountRollouts(BaseCallback):
    def __init__(self):
        super().__init__()
        self.rollouts = 0

    def _on_rollout_end(self):
        self.rollouts += 1

    def _on_step(self):
        return True


def parameters(model):
    return th.cat([p.detach().flatten().clone() for p in model.policy.parameters()])


def test_a_rollout_without_signal_is_not_trained_on():
    env = make_vec_env(ConstantEnv, n_envs=4, seed=0)
    kwargs = dict(group_mode="time", n_steps=16, batch_size=32, n_epochs=2, ent_coef=0.01, seed=0)
    plain = GRPO("MlpPolicy", env, **kwargs)
    before = parameters(plain)
    plain.learn(256)
    assert not th.equal(parameters(plain), before)  # every tied rollout still took entropy-only steps

    model = GRPO("MlpPolicy", make_vec_env(ConstantEnv, n_envs=4, seed=0), dynamic_sampling=True, **kwargs)
    before = parameters(model)
    counter = CountRollouts()
    model.learn(256, callback=counter)
    assert th.equal(parameters(model), before)  # nothing to learn: no update at all
    assert model.num_timesteps >= 256  # but every step was taken and counted
    assert counter.rollouts == 1  # the 4 rollouts of 64 steps waited for signal together


def test_updates_hold_only_samples_with_signal():
    env = make_vec_env(RareSuccessEnv, n_envs=8, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="time", dynamic_sampling=True, n_steps=8, batch_size=16, n_epochs=1, seed=0)
    sizes = []
    for _ in range(20):
        model.learn(64, reset_num_timesteps=False)
        if model.rollout_buffer.size:
            sizes.append(model.rollout_buffer.size)
            assert np.all(model.rollout_buffer.advantages != 0)
    assert sizes and min(sizes) >= 16  # every update waited for a minibatch of signal
