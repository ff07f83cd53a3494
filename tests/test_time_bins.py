"""group_mode='time': GPG's time-binned baselines over every episode of a rollout, episodes carried across rollouts."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
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
    rollout = TimeBins._rollout(episodes, model_old_policy(model), None)
    advantages = group_advantages(rollout.returns, rollout.weights, "process", "none")[tuple(rollout.index.T)]

    returns = [[1.25, 0.5, 1.0], [0.0, 0.0], [1.875, 1.75, 1.5, 1.0]]  # discounted returns-to-go, gamma 0.5
    expected = []
    for run in returns:
        for t, value in enumerate(run):
            alive = [other[t] for other in returns if len(other) > t]
            expected.append(value - np.mean(alive) if len(alive) > 1 else 0.0)  # a lone episode compares nothing
    np.testing.assert_allclose(advantages, expected)
    assert rollout.index[:, 2].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3]  # the time step is the bin


def model_old_policy(model):
    from grpo_zoo.groups.base import OldPolicy

    return OldPolicy(model.policy, None, model.gamma)


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
    # The shipped CartPole-v1 entry's rollout (independent actions: noise_hold 1), a fifth of its budget
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = GRPO(
        "MlpPolicy", env, group_mode="time", noise_hold=1, n_steps=64, batch_size=256, n_epochs=10, learning_rate=1e-3,
        seed=0,
    )  # fmt: skip
    model.learn(20_000)
    mean_reward, _ = evaluate_policy(model, Monitor(gym.make("CartPole-v1")), n_eval_episodes=5)
    assert mean_reward >= 475


def test_held_noise_keeps_each_envs_number_for_hold_steps_and_renews_it_at_an_episode_start():
    from grpo_zoo.groups.sampling import HeldNoise

    noise = HeldNoise(n_envs=2, width=1, hold=3, device=th.device("cpu"))
    no_start = np.zeros(2, dtype=bool)
    draws = [noise.next(np.ones(2, dtype=bool)).clone()] + [noise.next(no_start).clone() for _ in range(3)]
    assert th.equal(draws[0], draws[1]) and th.equal(draws[1], draws[2])  # kept for 3 steps
    assert not th.equal(draws[2][0], draws[3][0])  # then drawn anew
    kept = noise.next(np.array([True, False])).clone()  # env 0's episode starts: its number is new, env 1 keeps its own
    assert not th.equal(kept[0], draws[3][0]) and th.equal(kept[1], draws[3][1])


def test_held_noise_actions_are_still_samples_of_the_policy():
    # Every action is the policy's inverse CDF at a uniform number: its frequency is pi_old(a|s), whatever the hold
    from stable_baselines3.common.distributions import CategoricalDistribution

    from grpo_zoo.groups.sampling import HeldNoise

    th.manual_seed(0)
    distribution = CategoricalDistribution(3).proba_distribution(th.log(th.tensor([[0.2, 0.5, 0.3]])).repeat(4000, 1))
    noise = HeldNoise(n_envs=4000, width=1, hold=5, device=th.device("cpu"))
    actions = th.cat([noise.sample(distribution, np.zeros(4000, dtype=bool)) for _ in range(5)])
    frequencies = th.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(frequencies.numpy(), [0.2, 0.5, 0.3], atol=0.02)
    assert all(th.equal(a, actions[:4000]) for a in actions.split(4000))  # and the same 5 steps in a row


def test_noise_hold_escapes_acrobots_dead_start():
    # Independent actions of a random-init policy never swing Acrobot up: every episode times out alike, so every
    # time bin ties and nothing is learned. Held for 4 steps, the same policy reaches the goal and GRPO learns.
    def learned(noise_hold):
        env = make_vec_env("Acrobot-v1", n_envs=8, seed=1)
        model = GRPO("MlpPolicy", env, group_mode="time", noise_hold=noise_hold, n_steps=128, batch_size=256, seed=1)
        model.learn(12_000)
        return np.mean([info["r"] for info in model.ep_info_buffer])

    assert learned(1) == -500
    assert learned(4) > -470  # episodes reach the goal, the time bins rank them, and the policy moves
