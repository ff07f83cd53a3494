"""Smoke tests: every action space, policy and group mechanism runs and logs GRPO's keys."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

from grpo_zoo import GRPO

IDENTITY_ENVS = {
    "discrete": lambda: IdentityEnv(4),
    "box": lambda: IdentityEnvBox(eps=0.5),
    "multidiscrete": lambda: IdentityEnvMultiDiscrete(3),
    "multibinary": lambda: IdentityEnvMultiBinary(3),
}


@pytest.mark.parametrize("space", list(IDENTITY_ENVS))
@pytest.mark.parametrize("group_mode", ["state", "episode"])
def test_action_spaces(space, group_mode):
    env = make_vec_env(IDENTITY_ENVS[space], n_envs=2, seed=0)
    model = GRPO("MlpPolicy", env, group_size=2, group_mode=group_mode, n_steps=8, batch_size=16, n_epochs=2, seed=0)
    model.learn(32)
    assert model.num_timesteps >= 32
    assert model.policy.action_space == env.action_space


class MatrixActionEnv(gym.Env):
    """
    A Box action of shape (2, 2) on a copyable state (state groups can branch it): the state moves by the action's
    column sums. ``step`` checks that every action, real or probe, arrives in the space's shape and bounds.
    """

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1.0, 1.0, size=2).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        assert action.shape == (2, 2) and self.action_space.contains(action.astype(np.float32)), action
        self.state = np.clip(self.state + 0.1 * action.sum(axis=0), -10.0, 10.0).astype(np.float32)
        return self.state.copy(), -float(np.abs(self.state).sum()), False, False, {}


@pytest.mark.parametrize("group_mode", ["state", "episode", "time"])
def test_multidimensional_box_actions(group_mode):
    # Actions are sampled flat ([B, 4]) and reach the env, in real steps and probes, as SB3 sends them: [B, 2, 2]
    env = make_vec_env(
        MatrixActionEnv, n_envs=2, seed=0, wrapper_class=gym.wrappers.TimeLimit, wrapper_kwargs={"max_episode_steps": 16}
    )
    mechanism = {"horizon": 4} if group_mode == "state" else {}
    model = GRPO(
        "MlpPolicy", env, group_mode=group_mode, group_size=2, n_steps=16, batch_size=32, n_epochs=1, seed=0, **mechanism
    )
    model.learn(64)
    assert model.num_timesteps >= 64
    assert group_mode != "state" or model.num_probe_steps > 0
    assert model.predict(env.reset())[0].shape == (2, 2, 2)


class DummyMultidimensionalAction(gym.Env):
    """Stable-Baselines3's tests/test_spaces.py env: a Box action of shape (2, 2), random observations, reward 0."""

    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Box(low=-1, high=1, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(low=-1, high=1, shape=(2, 2), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@pytest.mark.filterwarnings("ignore:.*cannot tell the group's actions apart")  # its reward is always 0
@pytest.mark.parametrize("model_class", [PPO, GRPO])
@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1", DummyMultidimensionalAction])
def test_action_spaces_as_sb3_tests_them(model_class, env):
    # Stable-Baselines3's tests/test_spaces.py::test_action_spaces, GRPO beside PPO (GRPO's default: state groups)
    env = env if isinstance(env, str) else env()
    model = model_class("MlpPolicy", env, n_steps=64)
    if isinstance(env, DummyMultidimensionalAction):
        model.learn(64)


def test_dict_observations_with_multi_input_policy():
    model = GRPO(
        "MultiInputPolicy",
        make_vec_env(SimpleMultiObsEnv, n_envs=2, seed=0),
        group_mode="state",
        n_steps=8,
        batch_size=16,
        n_epochs=1,
    )
    model.learn(16)
    # At most G - 1 = 3 probes per real step (the real action's member is the real step), plus 1 audit step per env
    assert 0 < model.num_probe_steps <= 16 * 3 + 2


def test_cnn_policy_on_images():
    from stable_baselines3.common.envs import FakeImageEnv

    env = make_vec_env(lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1), n_envs=1, seed=0)
    model = GRPO("CnnPolicy", env, group_mode="state", group_size=2, n_steps=4, batch_size=8, n_epochs=1)
    model.learn(8)
    assert model.num_timesteps == 8


def test_logs_grpo_and_sb3_keys():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GRPO(
        "MlpPolicy",
        env,
        group_mode="state",
        reward_function="reward_fns.cartpole:reward",
        beta=0.1,
        n_steps=64,
        n_epochs=2,
        seed=0,
    )
    model.learn(256)
    logged = model.logger.name_to_value
    keys = ["train/policy_gradient_loss", "train/approx_kl", "train/clip_fraction", "train/entropy_loss"]
    for key in [*keys, "train/clip_range", "train/kl_ref"]:
        assert np.isfinite(logged[key]), key
    assert len(model.ep_info_buffer) > 0  # Monitor episodes reach rollout/ep_rew_mean
    assert 0 < model.num_probe_steps <= model.num_timesteps * 3 + 2 * 2


def test_schedules_never_go_negative_when_the_last_rollout_overshoots():
    """rl-zoo3's ``lin_`` schedule is ``progress * initial``: the rollout that overshoots the budget must not train
    with a negative learning rate (gradient ascent) or clip range."""
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)

    def linear(progress):
        return progress * 1e-3

    model = GRPO(
        "MlpPolicy",
        env,
        group_mode="state",
        reward_function="reward_fns.cartpole:reward",
        learning_rate=linear,
        clip_range=lambda progress: progress * 0.2,
        n_steps=64,
        n_epochs=1,
        seed=0,
    )
    model.learn(200)  # rollouts of 128 real steps: the second one ends at 256 > 200
    assert model.num_timesteps == 256
    assert model._current_progress_remaining == 0.0
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.0
    assert model.logger.name_to_value["train/clip_range"] == 0.0


def test_probe_steps_counted_apart_from_real_steps():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="state", group_size=3, horizon=2, n_steps=16, n_epochs=1, seed=0)
    model.learn(32)
    assert model.num_timesteps == 32
    # Each simulated member takes up to 2 probe steps (fewer if it terminates); the real action's member is
    # read off the real trajectory and members that took the same action share a probe: at most 2 x (G - 1) per
    # real step, plus 1 audit step per env per rollout
    assert 0 < model.num_probe_steps <= 2 * 2 * 32 + 2 * 2


def test_exhaustive_groups_probe_every_action_once():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="state", exhaustive=True, n_steps=16, n_epochs=1, seed=0)
    model.learn(32)
    # One probe for the action the real env did not take (horizon 1 always ends within the rollout), and one audit
    # step per env
    assert model.num_probe_steps == 32 + 2  # one rollout of 16 steps x 2 envs


def test_subproc_vec_env_and_vec_normalize():
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv))
    model = GRPO("MlpPolicy", env, group_mode="state", horizon=2, n_steps=16, n_epochs=1, seed=0)
    model.learn(64)
    assert model.num_timesteps == 64
    assert env.obs_rms.count > 64  # normalisation statistics come from real steps
    env.close()


def test_episode_groups_on_subproc_vec_env():
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0, vec_env_cls=SubprocVecEnv)
    model = GRPO("MlpPolicy", env, group_mode="episode", group_size=2, n_steps=16, n_epochs=1, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64
    assert len(model.ep_info_buffer) >= 4  # every member's episode reached the Monitor, in its worker
    env.close()


def test_episode_groups_do_not_count_idle_steps():
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="episode", group_size=2, n_steps=16, n_epochs=1, seed=0)
    model.learn(64)
    monitor_steps = sum(sum(e.get_episode_lengths()) for e in env.envs)
    # Every counted step is a real step of an episode that the Monitor recorded as finished
    assert model.num_timesteps == monitor_steps
    assert model.num_probe_steps == 0


def test_episode_group_members_share_their_reset_seed():
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = GRPO("MlpPolicy", env, group_mode="episode", group_size=2, n_steps=4, n_epochs=1, seed=0)
    starts = []
    original_reset = model.groups._reset_group

    def spy(env_, group, raw_obs, *args):
        original_reset(env_, group, raw_obs, *args)
        members = range(group * 2, group * 2 + 2)
        starts.append([raw_obs[i].copy() for i in members])

    model.groups._reset_group = spy
    model.learn(8)
    assert len(starts) >= 2
    for first, second in starts:
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(starts[0][0], starts[1][0])  # different groups, different seeds


def test_reward_function_sees_unnormalised_observations():
    seen = []

    def spy_reward(state, action, next_state):
        seen.append((state.clone(), action.clone(), next_state.clone()))
        return th.zeros(len(state), 1)

    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = GRPO("MlpPolicy", env, group_mode="state", reward_function=spy_reward, n_steps=8, n_epochs=1, seed=0)
    model.learn(16)
    state, action, next_state = seen[-1]
    # Every simulated member of the rollout's groups at once
    batch = len(state)
    assert state.shape == (batch, 4) and next_state.shape == (batch, 4) and action.shape == (batch, 1)
    assert set(action.flatten().tolist()) <= {0.0, 1.0}
    # Raw CartPole observations: next x = x + 0.02 x_dot exactly as the env integrates (float32)
    np.testing.assert_allclose(next_state[:, 0], state[:, 0] + 0.02 * state[:, 1], atol=1e-5)


def test_gym_env_id_and_single_env():
    model = GRPO("MlpPolicy", "CartPole-v1", group_mode="state", n_steps=8, n_epochs=1)
    model.learn(8)
    assert model.n_envs == 1


def test_predict_works_after_training():
    model = GRPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), group_mode="state", n_steps=8, n_epochs=1)
    model.learn(8)
    action, _ = model.predict(gym.make("CartPole-v1").reset(seed=0)[0], deterministic=True)
    assert action in (0, 1)


class NeverEnds(gym.Env):
    """An env without a time limit whose episodes never end."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), float(action), False, False, {}


def test_episode_groups_stop_on_an_env_whose_episodes_never_end():
    env = make_vec_env(NeverEnds, n_envs=4, seed=0)
    with pytest.warns(UserWarning, match=r"no time limit"):
        model = GRPO("MlpPolicy", env, group_mode="episode", group_size=2, n_steps=32, batch_size=64, n_epochs=1)
    model.learn(512)
    # Each rollout: its 32 x 4 budget, then the running episodes cut after another 32 steps per env
    assert 512 <= model.num_timesteps <= 512 + 2 * 32 * 4
    assert np.isfinite(model.logger.name_to_value["train/policy_gradient_loss"])


class PinnedAction(gym.ActionWrapper):
    """A zero-width action space: every sampled action clips to the same env action (a saturated policy's case)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.action_space = gym.spaces.Box(0.0, 0.0, (1,), np.float32)

    def action(self, action):
        return action


def test_reward_function_rollout_where_no_group_has_two_actions():
    # No group is worth a probe, only the audits step: the reward function is not called on zero members
    env = PinnedAction(gym.make("MountainCarContinuous-v0"))
    reward_function = "reward_fns.mountain_car_continuous:reward"
    model = GRPO(
        "MlpPolicy", env, group_mode="state", group_size=4, n_steps=32, batch_size=32, reward_function=reward_function, seed=0
    )
    model.learn(64)
    assert model.num_timesteps == 64 and model.num_probe_steps == 2  # one audit step per rollout


class CountCalls(BaseCallback):
    def __init__(self):
        super().__init__()
        self.steps_at_call = []

    def _on_step(self) -> bool:
        self.steps_at_call.append(self.num_timesteps)
        return True


@pytest.mark.parametrize("group_mode", ["state", "episode", "time"])
def test_callbacks_count_real_steps(group_mode):
    # Episode groups step only the running members: on_step still comes once per n_envs real steps, so that
    # progress bars, checkpoints (every save_freq // n_envs calls) and evaluations follow real steps
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = GRPO("MlpPolicy", env, group_mode=group_mode, group_size=2, n_steps=16, batch_size=64, n_epochs=1, seed=0)
    callback = CountCalls()
    model.learn(1_000, callback=callback)
    n_calls = len(callback.steps_at_call)
    assert n_calls * 4 <= model.num_timesteps < (n_calls + 1) * 4
    # The k-th call comes as soon as 4k real steps are taken
    for k, steps in enumerate(callback.steps_at_call, start=1):
        assert 4 * k <= steps < 4 * k + 4
