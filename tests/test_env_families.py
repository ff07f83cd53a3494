"""The zoo's env families (issue 19) in GRPO itself: which group mechanisms each takes, and the observation spaces."""

import ale_py
import gymnasium as gym
import minigrid
import numpy as np
import pytest
import rl_zoo3.import_envs  # noqa: F401  (the env packages the zoo registers)
import yaml
from gymnasium import spaces
from minigrid.wrappers import FlatObsWrapper
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

from grpo_zoo import GRPO
from grpo_zoo.benchmarking.coverage import ATARI_GAMES, entry_for, env_to_run, ppo_envs
from grpo_zoo.groups.branching import DeepCopySnapshotter, verify_snapshotter
from grpo_zoo.zoo.observations import check_observation_space, unsupported_part
from grpo_zoo.zoo.register import grpo_hyperparams_path

gym.register_envs(minigrid)
gym.register_envs(ale_py)

MINIGRID = "MiniGrid-Empty-5x5-v0"
ATARI = "BreakoutNoFrameskip-v4"  # a life ends within a few dozen steps of a random policy


def _atari_with_frame_stack(n_envs: int = 2) -> VecTransposeImage:
    """The zoo's `atari:` entry as a VecEnv: AtariWrapper, 4 stacked frames, channels first."""
    return VecTransposeImage(VecFrameStack(make_atari_env(ATARI, n_envs=n_envs, seed=0), n_stack=4))


def test_minigrid_branches_exactly_through_the_verified_deep_copy():
    # MiniGrid's state is pure Python: the generic deep copy is proven exact (here over 30 steps, 3 seeds) and state
    # groups branch it without a snapshot family of its own
    unwrapped = FlatObsWrapper(gym.make(MINIGRID)).unwrapped
    for seed in range(3):
        assert verify_snapshotter(unwrapped, DeepCopySnapshotter(), seed=seed, n_steps=30) is None
    env = make_vec_env(MINIGRID, n_envs=2, seed=0, wrapper_class=FlatObsWrapper)
    model = GRPO(
        "MlpPolicy", env, group_mode="state", group_size=2, horizon=4, branch_fraction=0.25, n_steps=32, batch_size=32,
        n_epochs=1, seed=0,
    )  # fmt: skip
    snapshotters = [type(brancher.snapshotter) for brancher in env.get_attr("_grpo_brancher")]
    assert snapshotters == [DeepCopySnapshotter, DeepCopySnapshotter]
    # Each rollout also replays one real step per env in a probe: a snapshot that is not exact stops training
    model.learn(128)
    assert model.num_probe_steps > 0


@pytest.mark.parametrize("group_mode", ["state", "episode"])
def test_atari_frame_stack_is_refused_naming_time_bins(group_mode):
    # Branching a frame stack would need the VecFrameStack's buffer in every snapshot: not done, one error instead
    with pytest.raises(ValueError, match=r"VecEnv wrapper VecFrameStack.*Use group_mode='time'"):
        GRPO("CnnPolicy", _atari_with_frame_stack(), group_mode=group_mode, group_size=2)


def test_time_bins_train_on_atari_frame_stacks():
    # The zoo's atari: entry (AtariWrapper, 4 frames, CnnPolicy): lives end within the rollouts and are trained on
    model = GRPO("CnnPolicy", _atari_with_frame_stack(), group_mode="time", n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(256)
    assert model.rollout_buffer.size > 0
    assert model.rollout_buffer.observations.shape[1:] == (4, 84, 84)
    assert np.isfinite(model.logger.name_to_value["train/policy_gradient_loss"])


def test_minigrid_observation_space_is_named_with_its_wrapper():
    space = gym.make(MINIGRID).observation_space
    assert unsupported_part(space) == "a MissionSpace space under key 'mission'"
    with pytest.raises(ValueError, match=r"^MiniGrid-Empty-5x5-v0's observation space has a MissionSpace.*FlatObsWrapper"):
        check_observation_space(MINIGRID, space, "MlpPolicy", "minigrid.envs:EmptyEnv")
    # Its fix, the zoo's wrapper, passes
    check_observation_space(MINIGRID, FlatObsWrapper(gym.make(MINIGRID)).observation_space, "MlpPolicy")


def test_observation_space_checks():
    box = spaces.Box(0, 1, (3,))
    for supported in (box, spaces.Discrete(3), spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(4)):
        assert unsupported_part(supported) is None
        check_observation_space("X-v0", supported, "MlpPolicy")
    assert unsupported_part(spaces.Text(8)) == "a Text space"
    assert unsupported_part(spaces.Tuple((box, box))) == "a Tuple space"
    assert unsupported_part(spaces.Dict({"a": spaces.Dict({"b": box})})) == "a Dict space under key 'a'"
    with pytest.raises(ValueError, match=r"has a Text space.*MyObservationWrapper"):
        check_observation_space("X-v0", spaces.Text(8), "MlpPolicy")
    # A Dict of supported spaces needs SB3's MultiInputPolicy
    dict_space = spaces.Dict({"a": box, "b": spaces.Discrete(2)})
    check_observation_space("X-v0", dict_space, "MultiInputPolicy")
    with pytest.raises(ValueError, match=r"is a Dict \(a, b\), which needs policy 'MultiInputPolicy', got policy='MlpPolicy'"):
        check_observation_space("X-v0", dict_space, "MlpPolicy")


def test_every_registered_env_of_the_zoos_ppo_yml_has_a_grpo_entry():
    # Issue 19: no env of the zoo's ppo.yml falls to `default:` (MuJoCo's -v2/-v4 ids run as the -v5 envs)
    with open(grpo_hyperparams_path()) as file:
        entries = yaml.safe_load(file)
    envs = ppo_envs()
    assert set(ATARI_GAMES) <= set(envs) and "default" not in envs and "atari" not in envs
    assert env_to_run("Reacher-v2")[0] == "Reacher-v5"
    assert env_to_run("Ant-v4")[0] == "Ant-v5"
    assert env_to_run("CartPole-v1") == ("CartPole-v1", "")
    assert entry_for("PongNoFrameskip-v4", entries) == "atari"
    assert entry_for("FrozenLake-v1", entries) == "default"
    run = [env_to_run(env_id)[0] for env_id in envs]
    assert {env_id: entry_for(env_id, entries) for env_id in run if env_id and entry_for(env_id, entries) == "default"} == {}
    # Families whose packages the tests extra installs are all there
    assert {"PongNoFrameskip-v4", "MiniGrid-ObstructedMaze-2Dlh-v0", "CarRacing-v3", "HumanoidStandup-v5"} <= set(run)


def test_the_tuner_and_the_benchmark_pick_the_atari_entry_as_the_zoo_does():
    from pathlib import Path

    from grpo_zoo.benchmarking.config import entry_key
    from grpo_zoo.zoo.register import grpo_hyperparams_path, zoo_entry_key

    entries = yaml.safe_load(Path(grpo_hyperparams_path()).read_text())
    assert zoo_entry_key(entries, "BreakoutNoFrameskip-v4") == "atari"
    assert zoo_entry_key(entries, "CartPole-v1") == "CartPole-v1"
    assert zoo_entry_key({"default": {}}, "BreakoutNoFrameskip-v4") == "default"
    assert entry_key(Path(grpo_hyperparams_path()), "PongNoFrameskip-v4") == "atari"
