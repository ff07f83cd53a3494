"""
Issue 19: every env family of the zoo's ppo.yml trains, saves and plays with ``--algo grpo`` through the unmodified
zoo commands, from its hyperparams/grpo.yml entry (tiny budgets: a smoke test, not a benchmark).
``python -m grpo_zoo.benchmarking.coverage`` runs every env of ppo.yml this way and prints the README's table.
"""

import pytest
import yaml

# env id -> (the grpo.yml key that serves it, what its entry sets, zoo arguments of the test). The arguments only
# shrink the run: fewer envs and shorter rollouts, and a time limit (--env-kwargs max_episode_steps) on envs whose
# episodes outlast a tiny budget, so that episodes end and GRPO updates the policy (time bins train finished episodes)
FAMILIES = {
    # MiniGrid: the zoo's FlatObsWrapper turns the Dict observation (with a Text mission) into one array
    "MiniGrid-Empty-Random-5x5-v0": (
        "MiniGrid-Empty-Random-5x5-v0",
        {"env_wrapper": "minigrid.wrappers.FlatObsWrapper", "policy": "MlpPolicy"},
        "-n 1536 -params n_steps:64",  # 3 rollouts: a random policy's episodes time out at 100 steps, in the 2nd
    ),
    # Atari: the zoo's `atari:` family key, AtariWrapper (a life is an episode) and 4 stacked frames, CnnPolicy
    "BreakoutNoFrameskip-v4": (
        "atari",
        {"env_wrapper": ["stable_baselines3.common.atari_wrappers.AtariWrapper"], "frame_stack": 4, "policy": "CnnPolicy"},
        "-n 512 -params n_envs:2 n_steps:64",
    ),
    # Box2D with the zoo's image wrappers and 2 stacked frames, continuous actions from a CnnPolicy
    "CarRacing-v3": (
        "CarRacing-v3",
        {"frame_stack": 2, "policy": "CnnPolicy"},
        "-n 256 -params n_envs:1 n_steps:64 --env-kwargs max_episode_steps:80",
    ),
    # MuJoCo -v5 without state groups
    "Ant-v5": ("Ant-v5", {"policy": "MlpPolicy"}, "-n 512 -params n_steps:128 --env-kwargs max_episode_steps:100"),
}


def _load_config(experiment_dir, env_id):
    with open(experiment_dir / env_id / "config.yml") as file:
        return dict(yaml.load(file, Loader=yaml.UnsafeLoader))


@pytest.mark.parametrize("env_id", list(FAMILIES))
def test_family_trains_saves_and_enjoys(tmp_path, run_cmd, env_id):
    key, entry, arguments = FAMILIES[env_id]
    with open(_grpo_yml()) as file:
        entries = yaml.safe_load(file)
    assert key in entries and (key == env_id or env_id not in entries), key
    run = run_cmd(f"python -m rl_zoo3.train --algo grpo --env {env_id} -f {tmp_path} --eval-freq -1 {arguments}").check()
    assert "Using 'default' hyperparameters" not in run.stdout
    # Episodes ended within the run and were trained on (SB3 prints an update's train/ keys with the next rollout's)
    assert "ep_rew_mean" in run.stdout
    assert "policy_gradient_loss" in run.stdout
    experiment_dir = tmp_path / "grpo" / f"{env_id}_1"
    assert (experiment_dir / f"{env_id}.zip").is_file()
    config = _load_config(experiment_dir, env_id)
    assert config["group_mode"] == entries[key]["group_mode"] == "time"
    for name, value in entry.items():
        assert config[name] == value, (name, config[name])
    if "frame_stack" in entry:
        assert f"Stacking {entry['frame_stack']} frames" in run.stdout

    # enjoy rebuilds the env from the saved config (wrappers, frame stack, VecNormalize statistics) and plays it
    enjoy = run_cmd(f"python -m rl_zoo3.enjoy --algo grpo --env {env_id} -f {tmp_path} --no-render -n 100").check()
    assert f"Loading {experiment_dir / env_id}.zip" in enjoy.stdout


def _grpo_yml():
    from grpo_zoo.zoo.register import grpo_hyperparams_path

    return grpo_hyperparams_path()


def test_unsupported_observation_space_is_one_error_line(tmp_path, run_cmd):
    # A MiniGrid env without an entry gets `default:`, which has no FlatObsWrapper: the zoo's DummyVecEnv failed deep
    # inside with "TypeError: 'NoneType' object is not iterable"; now one line names the env and the fix
    env_id = "MiniGrid-Empty-8x8-v0"
    run = run_cmd(f"python -m rl_zoo3.train --algo grpo --env {env_id} -n 256 -f {tmp_path} --eval-freq -1")
    run.check(returncode=1)
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: {env_id}'s observation space has a MissionSpace space under key 'mission'")
    assert "-params env_wrapper:\"'minigrid.wrappers.FlatObsWrapper'\"" in last_line
    assert "Traceback" not in run.stderr
