"""Branching is exact and leaves the real env untouched."""

import copy
import random

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import IdentityEnv
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from grpo_zoo import GRPO
from grpo_zoo.groups.branching import (
    ClassicControlSnapshotter,
    DeepCopySnapshotter,
    EnvBrancher,
    attach_branchers,
    verify_snapshotter,
)

CLASSIC_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def attach(venv):
    attach_branchers(venv)
    assert venv.env_method("grpo_branch", "verify") == [None] * venv.num_envs


def member_actions(venv, n_members, seed):
    space = copy.deepcopy(venv.action_space)
    space.seed(seed)
    return [np.array([space.sample() for _ in range(n_members)]) for _ in range(venv.num_envs)]


def start(venv, n_members, root_obs):
    """Every env: ``n_members`` members at its last saved root."""
    roots = [np.zeros(n_members, dtype=int)] * venv.num_envs
    venv.env_method("grpo_branch", "start", roots, [np.repeat(obs[None], n_members, axis=0) for obs in root_obs])


def step(venv, actions, n_members):
    active = [np.ones(n_members, dtype=bool)] * venv.num_envs
    return venv.env_method("grpo_branch", "step", actions, active)


@pytest.mark.parametrize("env_id", CLASSIC_ENVS)
def test_probe_equals_a_fresh_env_restored_and_stepped(env_id):
    venv = make_vec_env(env_id, n_envs=2, seed=1)
    attach(venv)
    obs = venv.reset()
    for _ in range(5):
        obs, *_ = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    physics = [copy.deepcopy(env.unwrapped.state) for env in venv.envs]
    venv.env_method("grpo_branch", "save_root", np.ones(2, dtype=bool))
    venv.step(np.array([venv.action_space.sample() for _ in range(2)]))  # the real env moves on: members do not care
    actions = member_actions(venv, 3, seed=2)
    start(venv, 3, obs)
    results = step(venv, actions, 3)
    for env_index, (observations, rewards, terminated, _truncated) in enumerate(results):
        for member in range(3):
            fresh = gym.make(env_id).unwrapped
            fresh.reset(seed=0)
            fresh.state = copy.deepcopy(physics[env_index])
            next_obs, reward, term, _, _ = fresh.step(actions[env_index][member])
            np.testing.assert_array_equal(observations[member], next_obs)
            assert rewards[member] == reward
            assert terminated[member] == term


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "InvertedPendulum-v5", "Ant-v5", "IdentityEnv"])
def test_real_env_continues_as_if_no_probe_happened(env_id):
    make = (lambda: IdentityEnv(4)) if env_id == "IdentityEnv" else env_id  # IdentityEnv: the generic deep-copy path
    probed, untouched = make_vec_env(make, n_envs=2, seed=7), make_vec_env(make, n_envs=2, seed=7)
    attach(probed)
    obs = probed.reset()
    untouched.reset()
    rng = np.random.default_rng(0)
    sampler = copy.deepcopy(probed.action_space)  # never the env's own space: IdentityEnv draws its states from it
    sampler.seed(0)
    n_steps = 60 if env_id.endswith("-v5") else 260  # MuJoCo: fewer, slower steps
    for t in range(n_steps):  # CartPole episodes end, Pendulum hits its 200-step time limit
        real = np.array([sampler.sample() for _ in range(2)])
        probed.env_method("grpo_branch", "save_root", np.ones(2, dtype=bool))
        start(probed, 4, obs)
        for k in range(int(rng.integers(1, 4))):
            step(probed, member_actions(probed, 4, seed=10 * t + k), 4)
        probed.env_method("grpo_branch", "clear")
        step_a, step_b = probed.step(real), untouched.step(real)
        for a, b in zip(step_a[:3], step_b[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        obs = step_a[0]
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


def test_mujoco_member_equals_the_real_env_stepped():
    venv = make_vec_env("HalfCheetah-v5", n_envs=1, seed=3)
    attach(venv)
    obs = venv.reset()
    for _ in range(3):
        obs, *_ = venv.step(np.array([venv.action_space.sample()]))
    venv.env_method("grpo_branch", "save_root", np.ones(1, dtype=bool))
    actions = member_actions(venv, 2, seed=4)
    start(venv, 2, obs)
    observations, rewards, *_ = step(venv, actions, 2)[0]
    real_obs, real_reward, *_ = venv.step(actions[0][:1])
    np.testing.assert_array_equal(observations[0], real_obs[0])
    assert np.float32(rewards[0]) == real_reward[0]
    assert not np.array_equal(observations[1], real_obs[0])


def test_terminal_member_reports_terminal_observation():
    venv = DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1"))])
    attach(venv)
    obs = venv.reset()
    venv.envs[0].unwrapped.state = np.array([0.0, 0.0, 0.2, 2.0])  # falling right, fast
    venv.env_method("grpo_branch", "save_root", np.ones(1, dtype=bool))
    start(venv, 2, obs)
    active = np.ones(2, dtype=bool)
    final = [None, None]
    for _ in range(10):
        observations, _, terminated, _ = venv.env_method("grpo_branch", "step", [np.array([0, 1])], [active])[0]
        for member in np.flatnonzero(active & terminated):
            final[member] = observations[member]
        active = active & ~terminated
    assert not active.any()
    for terminal in final:
        assert abs(terminal[2]) > 12 * 2 * np.pi / 360  # the terminal state, not a reset state
    np.testing.assert_array_equal(venv.envs[0].unwrapped.state, [0.0, 0.0, 0.2, 2.0])
    assert venv.envs[0].get_episode_rewards() == []


def test_probes_truncate_at_the_time_limit_without_moving_the_counter():
    venv = DummyVecEnv([lambda: Monitor(gym.make("Pendulum-v1", max_episode_steps=5))])
    attach(venv)
    venv.reset()
    venv.step(np.array([[0.0]]))
    obs, *_ = venv.step(np.array([[0.0]]))  # 2 of 5 steps used
    venv.env_method("grpo_branch", "save_root", np.ones(1, dtype=bool))
    start(venv, 2, obs)
    truncations = [step(venv, [np.zeros((2, 1))], 2)[0][3] for _ in range(3)]
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
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(0)
    brancher.save_root(env, np.ones(1, dtype=bool))
    brancher.start(env, [np.zeros(2, dtype=int)], [np.stack([obs, obs])])
    truncated = [brancher.step(env, [np.array([0, 1])], [np.ones(2, bool)])[3] for _ in range(2)]
    assert [t.tolist() for t in truncated] == [[False, False], [True, True]]


class LateNoise(gym.Env):
    """Deterministic for its first steps, then draws from Python's global RNG: no snapshot can hold that."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,))
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        noise = random.random() if self.t > 8 else 0.0
        return np.array([self.t + noise], dtype=np.float32), float(action), self.t >= 20, False, {}


def test_training_audits_branching_and_stops_when_a_probe_differs_from_the_real_step():
    # The proof at attach steps 3 times after a reset and passes; the noise starts later, during training
    model = GRPO("MlpPolicy", make_vec_env(LateNoise, n_envs=2, seed=0), group_mode="state", group_size=2, n_steps=16, seed=0)
    with pytest.raises(ValueError, match=r"env \d cannot be branched exactly: a probe that took the real env's action"):
        model.learn(64)


def test_interrupted_probes_leave_the_real_env_where_training_left_it():
    calls = {"n": 0}

    def interrupting_reward(state, action, next_state):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C while the probes of a rollout run
        return next_state[:, 3:4] * 0

    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GRPO("MlpPolicy", venv, group_mode="state", reward_function=interrupting_reward, horizon=3, n_steps=8, seed=0)
    with pytest.raises(KeyboardInterrupt):
        model.learn(64)
    # The real envs stand where the last real step left them: their observation is the model's last one
    for index, env in enumerate(venv.envs):
        np.testing.assert_array_equal(np.array(env.unwrapped.state, dtype=np.float32), model._last_obs[index])
    model.learn(32, reset_num_timesteps=False)
    assert model.num_timesteps == 16 + 32


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_the_real_trajectory_is_the_real_actions_member(env_id, monkeypatch):
    """Members follow pi_old with the real steps' own policy noise: simulating the member that took the real action
    gives exactly the score read off the real trajectory, so that member need not be simulated."""

    def scores(simulate_real):
        model = GRPO(
            "MlpPolicy",
            make_vec_env(env_id, n_envs=2, seed=0),
            group_mode="state",
            group_size=3,
            horizon=6,
            n_steps=32,
            seed=0,
        )
        if simulate_real:
            real_runs = model.groups._real_runs
            monkeypatch.setattr(model.groups, "_real_runs", lambda *a: (real_runs(*a)[0], np.zeros(64, bool)))
        collected = []
        collect = model.groups.collect
        monkeypatch.setattr(model.groups, "collect", lambda *a: collected.append(collect(*a)) or collected[-1])
        model.learn(64)
        return collected[0], model.num_probe_steps

    (read, read_probes), (simulated, simulated_probes) = scores(False), scores(True)
    # Groups whose members all took one action are not probed (nothing to compare): the others must agree exactly
    np.testing.assert_array_equal(read.distinct, simulated.distinct)
    assert read.distinct.sum() > 10
    np.testing.assert_array_equal(read.returns[read.distinct], simulated.returns[read.distinct])
    assert read_probes < simulated_probes


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_continuations_are_pi_old_samples_scored_from_their_step_on(env_id, monkeypatch):
    """With train_continuations, every step of every member's run is a sample: its log-probability is pi_old's at
    the observation recorded with it, and its return-to-go is its run's rewards from that step on."""
    model = GRPO(
        "MlpPolicy",
        make_vec_env(env_id, n_envs=2, seed=0),
        group_mode="state",
        group_size=4,
        horizon=8,
        branch_fraction=0.25,
        train_continuations=True,
        n_steps=32,
        seed=0,
    )
    collected = []
    collect = model.groups.collect
    monkeypatch.setattr(model.groups, "collect", lambda *a: collected.append(collect(*a)) or collected[-1])
    model.learn(64)
    rollout = collected[0]
    n_roots = len(rollout.returns)
    assert n_roots == 2 * 32 // 4 and rollout.returns.shape[2] == 8
    assert rollout.index[:, 2].max() == 7 and len(rollout.log_probs) > n_roots * 4
    # Every sample sits where its member's run has a return
    assert not np.isnan(rollout.returns[tuple(rollout.index.T)]).any()
    # pi_old of the first rollout is the initial policy: a second model built with the same seed has it
    pi_old = GRPO("MlpPolicy", make_vec_env(env_id, n_envs=2, seed=0), group_mode="state", n_steps=32, seed=0).policy
    actions = th.as_tensor(rollout.actions)
    with th.no_grad():
        distribution = pi_old.get_distribution(th.as_tensor(rollout.observations[rollout.obs_index]))
        recomputed = distribution.log_prob(actions.long().flatten() if env_id == "CartPole-v1" else actions)
    np.testing.assert_allclose(recomputed.numpy(), rollout.log_probs, rtol=1e-5, atol=1e-5)


def test_cartpole_members_step_in_one_vectorized_call_exactly_as_one_by_one():
    from grpo_zoo.groups.vector_probes import CartPoleVectorProbes

    venv = make_vec_env("CartPole-v1", n_envs=1, seed=2)
    attach(venv)
    brancher = venv.envs[0].get_wrapper_attr("_grpo_brancher")
    assert brancher._vector is not None  # proven exact on this machine
    vector = CartPoleVectorProbes(gym.make("CartPole-v1").unwrapped)
    assert vector.verify(gym.make("CartPole-v1").unwrapped) is None
    # A user's own physics are copied, not gymnasium's defaults
    heavy = gym.make("CartPole-v1").unwrapped
    heavy.masspole, heavy.total_mass, heavy.polemass_length = 1.0, 2.0, 0.5
    assert CartPoleVectorProbes(heavy).verify(heavy) is None
    states = np.array([[0.0, 0.0, 0.05, 0.0], [0.0, 0.0, 0.05, 0.0], [1.0, 0.5, -0.1, 0.2]])
    _, obs_default, *_ = vector.step(states, np.array([1, 1, 0]))
    _, obs_heavy, *_ = CartPoleVectorProbes(heavy).step(states, np.array([1, 1, 0]))
    assert not np.array_equal(obs_default, obs_heavy)
    np.testing.assert_array_equal(obs_default[0], obs_default[1])
