"""group_mode='time': GPG's time-binned baselines over every episode of a rollout, episodes carried across rollouts."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

from grpo_zoo import GRPO
from grpo_zoo.advantages import group_advantages
from grpo_zoo.groups.time_bins import TimeBins, _Episode

from test_grpo_run import IDENTITY_ENVS


class CounterEnv(gym.Env):
    """Observation = the episode's time step; ends after ``length`` steps; reward = the action taken."""

    def __init__(self, length: int = 10):
        self.length = length
        self.observation_space = spaces.Box(0, 1000, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.t], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], dtype=np.float32), float(action), self.t >= self.length, False, {}


def episode(rewards):
    record = _Episode()
    for t, reward in enumerate(rewards):
        record.observations.append(np.array([t], dtype=np.float32))
        record.actions.append(np.array(0))
        record.log_probs.append(0.0)
        record.rewards.append(reward)
    return record


def test_baseline_is_the_mean_return_to_go_of_the_episodes_at_the_same_time_step():
    episodes = [episode([1.0, 0.0, 1.0]), episode([0.0, 0.0]), episode([1.0, 1.0, 1.0, 1.0])]
    model = GRPO("MlpPolicy", make_vec_env(lambda: CounterEnv(), n_envs=1), group_mode="time", gamma=0.5)
    rollout = TimeBins._rollout(episodes, model_actor(model), None)
    advantages = group_advantages(rollout.returns, rollout.weights, "process", "none")[tuple(rollout.index.T)]

    returns = [[1.25, 0.5, 1.0], [0.0, 0.0], [1.875, 1.75, 1.5, 1.0]]  # discounted returns-to-go, gamma 0.5
    expected = []
    for run in returns:
        for t, value in enumerate(run):
            alive = [other[t] for other in returns if len(other) > t]
            expected.append(value - np.mean(alive) if len(alive) > 1 else 0.0)  # a lone episode compares nothing
    np.testing.assert_allclose(advantages, expected)
    assert rollout.index[:, 2].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3]  # the time step is the bin


def model_actor(model):
    from grpo_zoo.groups.base import Actor

    return Actor(model.policy, None, model.gamma)


def test_an_episode_cut_by_the_rollout_is_trained_whole_once_it_ends():
    # 1 env, episodes of 10 steps, rollouts of 4: the first episode ends in the third rollout
    env = make_vec_env(lambda: CounterEnv(length=10), n_envs=1, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="time", n_steps=4, batch_size=4, n_epochs=1, seed=0)
    sizes = []
    model.learn(4)
    sizes.append(model.rollout_buffer.size)
    model.learn(4, reset_num_timesteps=False)
    sizes.append(model.rollout_buffer.size)
    model.learn(4, reset_num_timesteps=False)
    sizes.append(model.rollout_buffer.size)
    observations = model.rollout_buffer.observations[:, 0].tolist()
    assert sizes == [0, 0, 10]
    assert observations == list(range(10))  # every step of the episode, in order, trained once


def test_a_reset_env_drops_the_episodes_carried_from_the_last_learn():
    env = make_vec_env(lambda: CounterEnv(length=10), n_envs=2, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="time", n_steps=6, batch_size=8, n_epochs=1, seed=0)
    model.learn(12)  # 6 steps per env: both episodes are cut and carried
    model.learn(24)  # reset_num_timesteps=True resets the env: the carried halves are gone
    observations = model.rollout_buffer.observations[:, 0]
    # Every trained episode counts 0, 1, ..., 9 from its reset: no episode is glued to one cut before the reset
    assert len(observations) == 20
    assert observations.tolist() == list(range(10)) * 2


@pytest.mark.parametrize("space", list(IDENTITY_ENVS))
def test_action_spaces(space):
    env = make_vec_env(IDENTITY_ENVS[space], n_envs=2, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="time", n_steps=16, batch_size=16, n_epochs=2, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64
    assert model.num_probe_steps == 0  # nothing is branched


def test_any_vec_env_wrapper_frame_stacks_included():
    # State and episode groups must replay observations and refuse VecFrameStack; time bins step the VecEnv as PPO
    env = VecNormalize(VecFrameStack(make_vec_env("CartPole-v1", n_envs=2, seed=0), n_stack=4))
    model = GRPO("MlpPolicy", env, group_mode="time", n_steps=128, batch_size=64, n_epochs=1, seed=0)
    model.learn(512)
    assert model.rollout_buffer.size > 0
    assert model.rollout_buffer.observations.shape[1:] == (16,)


def test_learns_cartpole_from_the_env_reward():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = GRPO(
        "MlpPolicy", env, group_mode="time", n_steps=64, batch_size=256, n_epochs=10, learning_rate=1e-3, seed=0
    )  # fmt: skip
    model.learn(20_000)
    mean_reward, _ = evaluate_policy(model, Monitor(gym.make("CartPole-v1")), n_eval_episodes=5)
    assert mean_reward >= 475
