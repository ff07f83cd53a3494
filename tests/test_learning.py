"""Small learning tests with fixed seeds: GRPO must actually learn (cf. the public sb3-grpo, which does not)."""

import gymnasium as gym
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import IdentityEnv, IdentityEnvBox
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from grpo_zoo import GRPO


def evaluate(model, env, n_episodes=5):
    mean_reward, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True)
    return mean_reward


def test_cartpole_state_groups_velocity_aware_reward():
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = GRPO(
        "MlpPolicy", env, group_mode="state", reward_function="reward_fns.cartpole:reward", group_size=4, horizon=1,
        n_steps=32, batch_size=256, n_epochs=10, learning_rate=1e-3, seed=0,
    )  # fmt: skip
    model.learn(5_000)
    assert evaluate(model, Monitor(gym.make("CartPole-v1"))) >= 475


def test_cartpole_episode_groups_env_reward():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = GRPO(
        "MlpPolicy", env, group_mode="episode", group_size=4, supervision="process", n_steps=64, batch_size=256,
        n_epochs=10, learning_rate=1e-3, seed=0,
    )  # fmt: skip
    model.learn(40_000)
    assert evaluate(model, Monitor(gym.make("CartPole-v1"))) >= 475


@pytest.mark.parametrize("exhaustive", [False, True])
def test_identity_discrete(exhaustive):
    env = make_vec_env(lambda: IdentityEnv(4), n_envs=2, seed=0)
    model = GRPO(
        "MlpPolicy", env, group_mode="state", exhaustive=exhaustive, n_steps=32, batch_size=64, learning_rate=3e-3, seed=0
    )
    model.learn(600)
    assert evaluate(model, Monitor(IdentityEnv(4)), n_episodes=10) >= 90  # 100 = always right


def test_identity_continuous():
    env = make_vec_env(lambda: IdentityEnvBox(eps=0.5), n_envs=2, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="state", group_size=8, n_steps=32, batch_size=128, learning_rate=3e-3, seed=0)
    model.learn(1_000)
    assert evaluate(model, Monitor(IdentityEnvBox(eps=0.5)), n_episodes=10) >= 90
