"""Save/load round trips, continued training and determinism."""

import re

import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import reward_fns.cartpole
from grpo_zoo import GRPO


def parameters(model):
    return th.cat([p.detach().flatten() for p in model.policy.parameters()])


def make_model(reward_function="reward_fns.cartpole:reward", seed=0, **kwargs):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=seed)
    kwargs.setdefault("group_mode", "state")
    return GRPO("MlpPolicy", env, reward_function=reward_function, n_steps=16, n_epochs=2, seed=seed, **kwargs)


@pytest.mark.parametrize("reward_function", ["reward_fns.cartpole:reward", reward_fns.cartpole.reward])
def test_import_path_reward_is_restored_by_itself(tmp_path, reward_function):
    model = make_model(reward_function, group_size=3, horizon=2, clip_range_high=0.3)
    model.learn(64)
    model.save(tmp_path / "model.zip")
    loaded = GRPO.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", n_envs=2))
    assert loaded.reward_function == "reward_fns.cartpole:reward"
    assert loaded.reward_model.functions == [reward_fns.cartpole.reward]
    assert (loaded.group_size, loaded.horizon) == (3, 2)
    assert loaded.clip_range_high(1.0) == 0.3
    assert th.equal(parameters(model), parameters(loaded))
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.num_timesteps == model.num_timesteps + 32
    assert loaded.num_probe_steps > model.num_probe_steps


def test_plain_callable_is_excluded_and_load_says_how_to_pass_it_back(tmp_path):
    model = make_model(lambda s, a, ns: -(ns[:, 3:4] ** 2))
    model.learn(32)
    model.save(tmp_path / "model.zip")
    assert callable(model.reward_function)  # saving does not change the live model
    with pytest.warns(UserWarning, match=r"custom_objects=\{'reward_function': fn\}"):
        loaded = GRPO.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", n_envs=2))
    loaded.predict(make_vec_env("CartPole-v1").reset())  # prediction needs no reward
    with pytest.raises(ValueError, match=r"custom_objects=\{'reward_function': fn\}"):
        loaded.learn(32)
    restored = GRPO.load(
        tmp_path / "model.zip",
        env=make_vec_env("CartPole-v1", n_envs=2),
        custom_objects={"reward_function": lambda s, a, ns: -(ns[:, 3:4] ** 2)},
    )
    restored.learn(32, reset_num_timesteps=False)
    assert restored.num_timesteps == 64


def test_load_without_env_predicts(tmp_path):
    model = make_model(group_mode="episode", group_size=2, reward_function=None)
    model.learn(32)
    model.save(tmp_path / "model.zip")
    loaded = GRPO.load(tmp_path / "model.zip")
    obs = make_vec_env("CartPole-v1").reset()
    assert (loaded.predict(obs, deterministic=True)[0] == model.predict(obs, deterministic=True)[0]).all()


@pytest.mark.parametrize("group_mode", ["state", "episode", "time"])
def test_same_seed_gives_identical_parameters(group_mode):
    # As in SB3, the seed is applied when the model is built: build and train one model at a time
    def train(seed):
        model = make_model(seed=seed, group_mode=group_mode, group_size=2)
        model.learn(96)
        return parameters(model)

    first, second, other = train(5), train(5), train(6)
    assert th.equal(first, second)
    assert not th.equal(first, other)


def test_model_loads_to_predict_where_its_reward_module_is_missing(tmp_path, monkeypatch):
    module_dir = tmp_path / "rewards_here"
    module_dir.mkdir()
    (module_dir / "my_private_reward.py").write_text(
        "def reward(state, action, next_state):\n    return -(next_state[:, 3:4] ** 2)\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    model = make_model("my_private_reward:reward")
    model.learn(32)
    model.save(tmp_path / "model.zip")

    # Elsewhere: the module is not importable
    monkeypatch.syspath_prepend(str(tmp_path / "nowhere"))
    import sys

    sys.path.remove(str(module_dir))
    sys.modules.pop("my_private_reward", None)
    with pytest.warns(UserWarning, match=r"my_private_reward:reward, which cannot be loaded here.*Prediction works"):
        loaded = GRPO.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", n_envs=2))
    obs = make_vec_env("CartPole-v1").reset()
    assert (loaded.predict(obs, deterministic=True)[0] == model.predict(obs, deterministic=True)[0]).all()
    with pytest.raises(ValueError, match=r"cannot be loaded here.*custom_objects"):
        loaded.learn(32)
    loaded.save(tmp_path / "again.zip")  # the path is kept, not lost
    sys.path.insert(0, str(module_dir))
    assert GRPO.load(tmp_path / "again.zip").reward_function == "my_private_reward:reward"


def test_state_group_model_loads_with_an_env_it_cannot_branch(tmp_path):
    from stable_baselines3.common.envs import IdentityEnv

    model = GRPO("MlpPolicy", make_vec_env(lambda: IdentityEnv(4), n_envs=1), group_mode="state", n_steps=8, batch_size=32)
    model.save(tmp_path / "model.zip")

    class Unbranchable(IdentityEnv):
        """Same spaces, but its step draws from Python's global RNG, which no snapshot holds."""

        def step(self, action):
            import random

            self.state = random.randrange(4)
            return self.state, 0.0, False, False, {}

    env = make_vec_env(lambda: Unbranchable(4), n_envs=1)
    loaded = GRPO.load(tmp_path / "model.zip", env=env)  # to predict: fine
    assert loaded.predict(env.reset())[0].shape == (1,)
    loaded.set_env(env)
    with pytest.raises(ValueError, match=r"cannot be branched exactly.*group_mode='episode'"):
        loaded.learn(16)


def exhaustive_model(env_seed=0):
    # Exhaustive groups of horizon 1 probe the one action the real env did not take at every real step, plus one
    # audit step per env: 16 x 2 + 2 = 34 probe steps per rollout, whatever the policy
    env = make_vec_env("CartPole-v1", n_envs=2, seed=env_seed)
    return GRPO(
        "MlpPolicy",
        env,
        group_mode="state",
        reward_function="reward_fns.cartpole:reward",
        exhaustive=True,
        n_steps=16,
        n_epochs=1,
        seed=0,
    )


def test_probe_counts_follow_reset_num_timesteps(tmp_path):
    # `rl_zoo3.train -i model.zip` continues a model with reset_num_timesteps=True: its probe counts start from 0
    # as num_timesteps does, so that the run's simulator steps are its own
    model = exhaustive_model()
    model.learn(32)
    assert (model.num_timesteps, model.num_probe_steps) == (32, 34)
    model.save(tmp_path / "model.zip")
    loaded = GRPO.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", n_envs=2, seed=1))
    assert loaded.num_probe_steps == 34
    loaded.probe_cpu_seconds = 1e6  # a first run's CPU seconds, far more than this one spends
    loaded.learn(32)
    assert (loaded.num_timesteps, loaded.num_probe_steps) == (32, 34)
    assert 0 < loaded.probe_cpu_seconds < 1e6
    # reset_num_timesteps=False: both counts carry on
    cpu_seconds = loaded.probe_cpu_seconds
    loaded.learn(32, reset_num_timesteps=False)
    assert (loaded.num_timesteps, loaded.num_probe_steps) == (64, 68)
    assert loaded.probe_cpu_seconds > cpu_seconds


class ProgressAtRolloutStart(BaseCallback):
    def __init__(self):
        super().__init__()
        self.progress = []

    def _on_rollout_start(self) -> None:
        self.progress.append(self.model._current_progress_remaining)

    def _on_step(self) -> bool:
        return True


def test_simulator_step_schedules_continue_over_both_runs():
    # With a budget in simulator steps (progress_counts_probes), reset_num_timesteps=False extends the budget by
    # the simulator steps already spent, as SB3 extends total_timesteps by num_timesteps
    model = exhaustive_model()
    model.progress_counts_probes = True
    model.learn(32)  # 32 real + 34 probe steps
    callback = ProgressAtRolloutStart()
    model.learn(200, callback=callback, reset_num_timesteps=False)
    # After the second run's first rollout: 64 real + 68 probe steps of 66 + 200
    assert callback.progress[1] == pytest.approx(1 - (64 + 68) / (66 + 200))


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "empty"])
def test_damaged_model_file_is_named(tmp_path, damage):
    # A truncated zip (an interrupted save or copy) gave SB3's "AssertionError: No data found in the saved file"
    model = make_model(reward_function=None, group_mode="episode", group_size=2)
    path = tmp_path / "model.zip"
    model.save(path)
    content = path.read_bytes()
    path.write_bytes({"truncated": content[: len(content) // 2], "not a zip": b"not a model", "empty": b""}[damage])
    message = rf"^{re.escape(str(path))} is not a readable model \(.*Save or copy it again"
    with pytest.raises(ValueError, match=message) as error:
        GRPO.load(path)
    assert error.value.__cause__ is not None  # what the reading raised
