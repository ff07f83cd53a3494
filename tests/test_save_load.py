"""Save/load round trips, continued training and determinism."""

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

import reward_fns.cartpole
from grpo_zoo import GRPO


def parameters(model):
    return th.cat([p.detach().flatten() for p in model.policy.parameters()])


def make_model(reward_function="reward_fns.cartpole:reward", seed=0, **kwargs):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=seed)
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


@pytest.mark.parametrize("group_mode", ["state", "episode"])
def test_same_seed_gives_identical_parameters(group_mode):
    # As in SB3, the seed is applied when the model is built: build and train one model at a time
    def train(seed):
        model = make_model(seed=seed, group_mode=group_mode, group_size=2)
        model.learn(96)
        return parameters(model)

    first, second, other = train(5), train(5), train(6)
    assert th.equal(first, second)
    assert not th.equal(first, other)
