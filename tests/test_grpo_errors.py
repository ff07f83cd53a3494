"""Bad input is a ValueError that names the parameter and the fix, raised before any training work."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from grpo_zoo import GRPO


@pytest.fixture
def cartpole():
    return make_vec_env("CartPole-v1", n_envs=2, seed=0)


def reward_wrong_shape(state, action, next_state):
    return th.zeros(len(state), 2)


def reward_not_a_tensor(state, action, next_state):
    return [0.0] * len(state)


def reward_nan(state, action, next_state):
    return th.full((len(state), 1), float("nan"))


NAN_AFTER = {"calls": 0}


def reward_nan_later(state, action, next_state):
    NAN_AFTER["calls"] += 1
    value = float("inf") if NAN_AFTER["calls"] > 2 else 0.0  # call 1: the check at construction
    return th.full((len(state), 1), value) + next_state[:, 1:2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"group_size": 1}, r"`group_size` must be an integer >= 2 .*got group_size=1"),
        ({"group_mode": "trajectory"}, r"`group_mode` must be one of \('state', 'episode', 'time'\), got group_mode='tra"),
        ({"scale_rewards": "std"}, r"`scale_rewards` must be one of"),
        ({"supervision": "final"}, r"`supervision` must be one of"),
        ({"horizon": 0}, r"`horizon` must be an integer >= 1"),
        ({"clip_range": 0.2, "clip_range_high": 0.1}, r"`clip_range_high` must be >= `clip_range`"),
        ({"beta": -1.0}, r"`beta` must be >= 0"),
        ({"reward_function": reward_wrong_shape}, r"reward_wrong_shape returned shape \[2, 2\].*expected \[2, 1\]"),
        ({"reward_function": reward_not_a_tensor}, r"must return a torch.Tensor"),
        ({"reward_function": reward_nan}, r"reward_nan returned a non-finite value"),
        ({"reward_function": "reward_fns.cartpol:reward"}, r"cannot import module 'reward_fns.cartpol'"),
        ({"reward_function": "reward_fns.cartpole:rewards"}, r"has no attribute 'rewards'"),
        ({"reward_function": "reward_fns.cartpole.reward"}, r"must look like 'package.module:function'"),
        ({"reward_function": ["reward_fns.cartpole:reward"], "reward_weights": [1.0, 2.0]}, r"one weight per reward function"),
        ({"exhaustive": True, "group_mode": "episode"}, r"needs group_mode='state'"),
        ({"use_sde": True}, r"`use_sde=True` .* not supported"),
        ({"ent_coef": float("nan")}, r"`ent_coef` must be a finite number, got ent_coef=nan"),
        ({"loss_weighting": "token"}, r"`loss_weighting` must be one of \('step', 'run'\), got loss_weighting='token'"),
        ({"train_continuations": True, "group_mode": "episode"}, r"`train_continuations=True` .*needs group_mode='state'"),
        ({"gamma": 2}, r"`gamma` must be in \(0, 1\], got gamma=2"),
        ({"branch_fraction": 0.0}, r"`branch_fraction` must be in \(0, 1\], got branch_fraction=0.0"),
        ({"learning_rate": float("nan")}, r"`learning_rate` must be > 0"),
        ({"learning_rate": "lin_x"}, r"`learning_rate` must be a number, a schedule or a linear schedule string"),
        ({"clip_range": "lin_x"}, r"`clip_range` must be a number, a schedule or a linear schedule string.*'lin_x'"),
        ({"clip_range_high": "0.3"}, r"`clip_range_high` must be a number, a schedule or a linear schedule string"),
        ({"reward_function": 42}, r"`reward_function` must be a callable .*got 42"),
        ({"reward_function": []}, r"`reward_function` must be a callable .*non-empty list.*got \[\]"),
        ({"reward_function": "reward_fns.cartpole:reward", "reward_weights": 2.0}, r"`reward_weights` must be a list"),
    ],
)
def test_bad_hyperparameters(cartpole, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GRPO("MlpPolicy", cartpole, **kwargs)


def test_episode_mode_needs_a_multiple_of_group_size():
    env = make_vec_env("CartPole-v1", n_envs=3)
    with pytest.raises(ValueError, match=r"n_envs=3 is not a multiple of group_size=2"):
        GRPO("MlpPolicy", env, group_mode="episode", group_size=2)


def test_unsupported_action_space():
    class TupleActionEnv(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (2,))
        action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2)))

    with pytest.raises(ValueError, match=r"does not support the action space Tuple"):
        GRPO("MlpPolicy", TupleActionEnv(), group_mode="episode", group_size=2)


def test_exhaustive_needs_discrete_actions():
    with pytest.raises(ValueError, match=r"`exhaustive=True` enumerates a Discrete action space"):
        GRPO("MlpPolicy", make_vec_env("Pendulum-v1"), group_mode="state", exhaustive=True)


def test_unbranchable_env_says_use_time_bins_or_episode_groups():
    with pytest.raises(ValueError, match=r"cannot be branched exactly.*Use group_mode='time'.*or group_mode='episode'"):
        GRPO("MlpPolicy", make_vec_env("LunarLander-v3", n_envs=1), group_mode="state")


def test_stateful_wrapper_is_refused_in_state_mode():
    env = make_vec_env(
        "CartPole-v1", n_envs=1, wrapper_class=gym.wrappers.FrameStackObservation, wrapper_kwargs={"stack_size": 2}
    )
    with pytest.raises(ValueError, match=r"wrapper FrameStackObservation may keep state.*group_mode='episode'"):
        GRPO("MlpPolicy", env, group_mode="state")


def test_non_finite_reward_during_training_is_a_clear_error(cartpole):
    NAN_AFTER["calls"] = 0
    model = GRPO("MlpPolicy", cartpole, group_mode="state", reward_function=reward_nan_later, n_steps=8)
    with pytest.raises(ValueError, match=r"reward_nan_later returned a non-finite value \(inf\) in a probe of env \d"):
        model.learn(64)


class NonFiniteEnv(gym.Env):
    """
    Counts the steps of its episode; step ``at`` returns ``value`` as its reward or in its observation. Its state
    is copyable, so state groups can branch it (``at`` > 4: the snapshot proof steps a copy 4 times).
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,))
    action_space = gym.spaces.Discrete(2)

    def __init__(self, at=None, what="reward", value=float("nan")):
        self.at, self.what, self.value = at, what, value
        self.t = 0

    def _obs(self, bad=False):
        return np.array([self.t, self.value if bad else 0.0], dtype=np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        bad = self.t == self.at
        reward = self.value if bad and self.what == "reward" else float(action)
        return self._obs(bad and self.what == "observation"), reward, False, self.t >= 20, {}


@pytest.mark.parametrize("what", ["reward", "observation"])
@pytest.mark.parametrize(
    "group_mode, place",
    [
        ("state", "for env 1 at rollout step 5"),
        ("episode", "for env 1 at step 5 of its episode"),
        ("time", "for env 1 at rollout step 5"),
    ],
)
def test_non_finite_env_value_names_env_and_step(group_mode, place, what):
    # Env 1 returns NaN on the 6th step of its episode: named where it enters, not blamed on the learning rate
    env = DummyVecEnv([lambda: NonFiniteEnv(), lambda: NonFiniteEnv(at=6, what=what)])
    model = GRPO("MlpPolicy", env, group_mode=group_mode, group_size=2, n_steps=8, batch_size=16, seed=0)
    with pytest.raises(ValueError, match=rf"the env returned a non-finite {what}, nan, {place}: "):
        model.learn(16)


def test_non_finite_reward_in_a_probe_names_env_and_step():
    # The real env never reaches step 6 in this rollout of 4 steps; the probes from its last root (horizon 4) do
    env = DummyVecEnv([lambda: NonFiniteEnv(at=6, value=float("inf"))])
    model = GRPO("MlpPolicy", env, group_mode="state", exhaustive=True, horizon=4, n_steps=4, batch_size=8, seed=0)
    message = r"non-finite reward, inf, in a probe of env 0 branched at rollout step 3, at its step 2"
    with pytest.raises(ValueError, match=message):
        model.learn(4)


def test_critic_arguments_warn_once_and_unknown_ones_fail(cartpole):
    with pytest.warns(UserWarning, match=r"critic-free: clip_range_vf, gae_lambda, vf_coef have no effect"):
        GRPO("MlpPolicy", cartpole, group_mode="state", vf_coef=0.5, gae_lambda=0.95, clip_range_vf=None)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\): n_critics"):
        GRPO("MlpPolicy", cartpole, group_mode="state", n_critics=2)


def test_sb3_grpo_example_reward_triggers_the_zero_variance_warning(cartpole):
    # The public sb3-grpo CartPole reward scores next position and angle, which the action cannot change
    def cartpole_reward_fn(state, action, next_state):
        return (1.0 - th.abs(next_state[:, 2]) - 0.1 * th.abs(next_state[:, 0])).unsqueeze(-1)

    model = GRPO("MlpPolicy", cartpole, group_mode="state", reward_function=cartpole_reward_fn, n_steps=16, n_epochs=1, seed=0)
    with pytest.warns(UserWarning, match=r"cannot tell the group's actions apart"):
        model.learn(32)
    assert model.logger.name_to_value["train/policy_gradient_loss"] == 0.0


def test_velocity_aware_reward_does_not_warn(cartpole):
    model = GRPO(
        "MlpPolicy", cartpole, group_mode="state", reward_function="reward_fns.cartpole:reward", n_steps=16, n_epochs=1, seed=0
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*cannot tell the group's actions apart.*")
        model.learn(32)
    assert np.isfinite(model.logger.name_to_value["train/policy_gradient_loss"])


def test_batch_size_larger_than_a_rollout_warns_as_in_ppo(cartpole):
    with pytest.warns(UserWarning, match=r"`batch_size`=512 is larger than a rollout \(about 64 samples"):
        GRPO("MlpPolicy", cartpole, group_mode="episode", group_size=2, n_steps=32, batch_size=512)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*larger than a rollout.*")
        GRPO("MlpPolicy", cartpole, group_mode="state", group_size=4, n_steps=32, batch_size=256)  # 32 x 2 envs x 4 members
