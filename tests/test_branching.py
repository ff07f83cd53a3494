"""Branching is exact and leaves the real env untouched."""

import copy

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import IdentityEnv
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from grpo_zoo.groups.branching import ClassicControlSnapshotter, DeepCopySnapshotter, EnvBrancher, verify_snapshotter

CLASSIC_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def attach(venv):
    for index in range(venv.num_envs):
        venv.set_attr("_grpo_brancher", EnvBrancher(index), indices=[index])
    assert venv.env_method("grpo_branch", "verify") == [None] * venv.num_envs


def member_actions(venv, n_members, seed):
    space = copy.deepcopy(venv.action_space)
    space.seed(seed)
    return np.array([[space.sample() for _ in range(n_members)] for _ in range(venv.num_envs)])


@pytest.mark.parametrize("env_id", CLASSIC_ENVS)
def test_probe_equals_a_fresh_env_restored_and_stepped(env_id):
    venv = make_vec_env(env_id, n_envs=2, seed=1)
    attach(venv)
    venv.reset()
    for _ in range(5):
        venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    actions = member_actions(venv, 3, seed=2)
    physics = [copy.deepcopy(env.unwrapped.state) for env in venv.envs]
    venv.env_method("grpo_branch", "begin", 3)
    results = venv.env_method("grpo_branch", "step", actions, np.ones((2, 3), dtype=bool))
    venv.env_method("grpo_branch", "end", None)
    for env_index, (observations, rewards, terminated, _truncated) in enumerate(results):
        for member in range(3):
            fresh = gym.make(env_id).unwrapped
            fresh.reset(seed=0)
            fresh.state = copy.deepcopy(physics[env_index])
            obs, reward, term, _, _ = fresh.step(actions[env_index, member])
            np.testing.assert_array_equal(observations[member], obs)
            assert rewards[member] == reward
            assert terminated[member] == term


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "InvertedPendulum-v5", "Ant-v5", "IdentityEnv"])
@pytest.mark.parametrize("replay", [False, True])
def test_real_env_continues_as_if_no_probe_happened(env_id, replay):
    make = (lambda: IdentityEnv(4)) if env_id == "IdentityEnv" else env_id  # IdentityEnv: the generic deep-copy path
    probed, untouched = make_vec_env(make, n_envs=2, seed=7), make_vec_env(make, n_envs=2, seed=7)
    attach(probed)
    obs_a, obs_b = probed.reset(), untouched.reset()
    rng = np.random.default_rng(0)
    sampler = copy.deepcopy(probed.action_space)  # never the env's own space: IdentityEnv draws its states from it
    sampler.seed(0)
    n_steps = 60 if env_id.endswith("-v5") else 260  # MuJoCo: fewer, slower steps
    for step in range(n_steps):  # CartPole episodes end, Pendulum hits its 200-step time limit
        real = np.array([sampler.sample() for _ in range(2)])
        actions = member_actions(probed, 4, seed=step)
        if replay:
            actions[:, 0] = real  # member 0 is the executed one, served from its probe
        executed = np.zeros(2, dtype=int) if replay else None
        horizon = int(rng.integers(1, 4))
        probed.env_method("grpo_branch", "begin", 4, horizon, executed)
        for _ in range(horizon):
            probed.env_method("grpo_branch", "step", actions, np.ones((2, 4), dtype=bool))
        probed.env_method("grpo_branch", "end", executed)
        step_a, step_b = probed.step(real), untouched.step(real)
        for a, b in zip(step_a[:3], step_b[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        obs_a, obs_b = step_a[0], step_b[0]
        np.testing.assert_array_equal(obs_a, obs_b)
    for env_a, env_b in zip(probed.envs, untouched.envs, strict=True):
        assert env_a.get_episode_rewards() == env_b.get_episode_rewards()  # Monitor statistics
        assert env_a.get_episode_lengths() == env_b.get_episode_lengths()
        if env_id != "IdentityEnv":  # gym.make adds a TimeLimit
            assert env_a.get_wrapper_attr("_elapsed_steps") == env_b.get_wrapper_attr("_elapsed_steps")
        assert env_a.unwrapped.np_random.bit_generator.state == env_b.unwrapped.np_random.bit_generator.state
        if hasattr(env_a.unwrapped, "data"):  # MuJoCo: the integration state and the derived body positions
            for field in ("qpos", "qvel", "xpos", "time"):
                np.testing.assert_array_equal(getattr(env_a.unwrapped.data, field), getattr(env_b.unwrapped.data, field))
        else:
            np.testing.assert_array_equal(env_a.unwrapped.state, env_b.unwrapped.state)


def test_terminal_member_reports_terminal_observation():
    venv = DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1"))])
    attach(venv)
    venv.reset()
    venv.envs[0].unwrapped.state = np.array([0.0, 0.0, 0.2, 2.0])  # falling right, fast
    venv.env_method("grpo_branch", "begin", 2)
    active = np.ones((1, 2), dtype=bool)
    final = [None, None]
    for _ in range(10):
        observations, _, terminated, _ = venv.env_method("grpo_branch", "step", np.array([[0, 1]]), active)[0]
        for member in np.flatnonzero(active[0] & terminated):
            final[member] = observations[member]
        active &= ~terminated
    venv.env_method("grpo_branch", "end", None)
    assert not active.any()
    for obs in final:
        assert abs(obs[2]) > 12 * 2 * np.pi / 360  # the terminal state, not a reset state
    np.testing.assert_array_equal(venv.envs[0].unwrapped.state, [0.0, 0.0, 0.2, 2.0])
    assert venv.envs[0].get_episode_rewards() == []


def test_probes_truncate_at_the_time_limit_without_moving_the_counter():
    venv = DummyVecEnv([lambda: Monitor(gym.make("Pendulum-v1", max_episode_steps=5))])
    attach(venv)
    venv.reset()
    venv.step(np.array([[0.0]]))
    venv.step(np.array([[0.0]]))  # 2 of 5 steps used
    venv.env_method("grpo_branch", "begin", 2)
    truncations = [venv.env_method("grpo_branch", "step", np.zeros((1, 2, 1)), np.ones((1, 2), bool))[0][3] for _ in range(3)]
    venv.env_method("grpo_branch", "end", None)
    assert [t.tolist() for t in truncations] == [[False, False], [False, False], [True, True]]
    assert venv.envs[0].get_wrapper_attr("_elapsed_steps") == 2


def test_generic_fallback_is_verified_and_box2d_is_refused():
    class Counter(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (1,))
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.count = 0.0
            return np.array([self.count], dtype=np.float32), {}

        def step(self, action):
            self.count += float(action) + self.np_random.normal()
            return np.array([self.count], dtype=np.float32), self.count, False, False, {}

    assert verify_snapshotter(Counter(), DeepCopySnapshotter()) is None
    assert verify_snapshotter(gym.make("CartPole-v1").unwrapped, ClassicControlSnapshotter()) is None
    reason = EnvBrancher(0).verify(gym.make("LunarLander-v3"))
    assert reason is not None and "LunarLander" in reason


def test_zoo_patched_time_limit_is_stepped_around():
    # rl_zoo3 replaces gymnasium's TimeLimit by its subclass PatchedTimeLimit on import
    from rl_zoo3.gym_patches import PatchedTimeLimit

    env = Monitor(PatchedTimeLimit(gym.make("CartPole-v1").unwrapped, max_episode_steps=3))
    brancher = EnvBrancher(0)
    assert brancher.verify(env) is None
    env.reset(seed=0)
    env.step(0)
    brancher.begin(env, 2)
    truncated = [brancher.step(env, np.array([[0, 1]]), np.ones((1, 2), bool))[3] for _ in range(2)]
    brancher.end(env)
    assert [t.tolist() for t in truncated] == [[False, False], [True, True]]
