"""``python -m rl_zoo3.train --algo grpo``: the unmodified zoo training command, run in subprocesses."""

import os
import textwrap

import numpy as np
import pytest
import yaml

N_STEPS = 300


def _load_config(experiment_dir, env_id):
    # rl_zoo3 dumps an OrderedDict: read it the way rl_zoo3.utils.get_saved_hyperparams does
    with open(experiment_dir / env_id / "config.yml") as file:
        return dict(yaml.load(file, Loader=yaml.UnsafeLoader))


def test_train_cartpole(cartpole_run):
    # --seed, --eval-freq, --save-freq, -tb, -P with the CartPole-v1 entry of hyperparams/grpo.yml
    log_folder, experiment_dir, run = cartpole_run
    assert "hyperparams/grpo.yml" in run.stdout
    assert (experiment_dir / "CartPole-v1.zip").is_file()
    assert (experiment_dir / "best_model.zip").is_file()
    assert len(list(experiment_dir.glob("rl_model_*_steps.zip"))) >= 2
    evaluations = np.load(experiment_dir / "evaluations.npz")
    assert len(evaluations["timesteps"]) >= 2
    assert evaluations["results"].shape[1] == 2  # --eval-episodes 2

    config = _load_config(experiment_dir, "CartPole-v1")
    assert config["group_mode"] == "time"  # time bins (issue 17)
    assert "reward_function" not in config  # the env's own reward, as --algo ppo
    assert config["n_envs"] >= 2  # episodes of several envs to compare
    with open(experiment_dir / "CartPole-v1" / "args.yml") as file:
        args = yaml.load(file, Loader=yaml.UnsafeLoader)
    assert args["algo"] == "grpo"
    assert args["seed"] == 0
    # -tb: SB3 names the run after the algorithm (tb_log_name="GRPO")
    assert list((log_folder.parent / "tb" / "CartPole-v1").glob("GRPO_*/events.out.tfevents.*"))


def test_train_pendulum(tmp_path, run_cmd):
    # Continuous actions (Box): the clipped action actually applied is what the reward function sees
    run_cmd(f"python -m rl_zoo3.train --algo grpo --env Pendulum-v1 -n {N_STEPS} -f {tmp_path} --eval-freq -1").check()
    assert (tmp_path / "grpo" / "Pendulum-v1_1" / "Pendulum-v1.zip").is_file()


# An env without a grpo.yml entry (and a Discrete observation space): it must fall back to `default:`
UNTUNED_ENV = "FrozenLake-v1"


def test_train_untuned_env_uses_default(tmp_path, run_cmd):
    with open(_grpo_yml()) as file:
        entries = yaml.safe_load(file)
    assert UNTUNED_ENV not in entries, f"{UNTUNED_ENV} got a grpo.yml entry: pick another untuned env for this test"
    run = run_cmd(f"python -m rl_zoo3.train --algo grpo --env {UNTUNED_ENV} -n {N_STEPS} -f {tmp_path} --eval-freq -1").check()
    assert "Using 'default' hyperparameters" in run.stdout
    experiment_dir = tmp_path / "grpo" / f"{UNTUNED_ENV}_1"
    assert (experiment_dir / f"{UNTUNED_ENV}.zip").is_file()
    config = _load_config(experiment_dir, UNTUNED_ENV)
    # Time bins: any env the zoo can build, any VecEnv wrapper (issue 19)
    assert config["group_mode"] == entries["default"]["group_mode"] == "time"


def _grpo_yml():
    from grpo_zoo.zoo.register import grpo_hyperparams_path

    return grpo_hyperparams_path()


def test_train_subproc_vec_env(tmp_path, run_cmd):
    # State groups branch through VecEnv.env_method: it must work across processes too
    run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n {N_STEPS} -f {tmp_path} --eval-freq -1 "
        "--vec-env subproc -params n_envs:2"
    ).check()
    assert (tmp_path / "grpo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


def test_continue_training(cartpole_run, tmp_path, run_cmd):
    _, experiment_dir, _ = cartpole_run
    run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n {N_STEPS} -f {tmp_path} --eval-freq -1 "
        f"-i {experiment_dir / 'CartPole-v1.zip'}"
    ).check()
    assert (tmp_path / "grpo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


def test_continue_training_from_a_damaged_model(cartpole_run, tmp_path, run_cmd):
    # -i on a truncated model file: one line naming it (SB3 said "AssertionError: No data found in the saved file")
    _, experiment_dir, _ = cartpole_run
    model = tmp_path / "damaged.zip"
    model.write_bytes((experiment_dir / "CartPole-v1.zip").read_bytes()[:5000])
    run = run_cmd(f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n {N_STEPS} -f {tmp_path} -i {model}")
    run.check(returncode=1)
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: {model} is not a readable model"), last_line
    assert "Traceback" not in run.stderr


def test_params_switch_group_mode(tmp_path, run_cmd):
    # -params group_mode:"'episode'" on a state-group entry (once CartPole-v1's) stopped on its
    # train_continuations=True: the keys only state groups read are dropped, with one warning
    run = run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env Pendulum-v1 -n {N_STEPS} -f {tmp_path} --eval-freq -1 "
        "-params group_mode:\"'episode'\""
    ).check()
    assert run.stderr.count("switched the entry's group mode") == 1, run.stderr
    assert "dropped its horizon, branch_fraction, which only group_mode='state' reads" in run.stderr
    config = _load_config(tmp_path / "grpo" / "Pendulum-v1_1", "Pendulum-v1")
    assert config["group_mode"] == "episode"
    assert not {"horizon", "branch_fraction"} & set(config)


def test_params_reward_function_path(tmp_path, run_cmd):
    # -params group_size:8 reward_function:"'pkg.mod:fn'" with a reward module of the user's own
    package = tmp_path / "my_rewards"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cartpole.py").write_text(
        textwrap.dedent(
            """
            def upright(state, action, next_state):
                # Pole angle and angular velocity after the action: a one-step reward that sees the action
                return -(next_state[:, 2:3] ** 2 + 0.1 * next_state[:, 3:4] ** 2)
            """
        )
    )
    run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n {N_STEPS} -f {tmp_path / 'logs'} --eval-freq -1 "
        "-params group_size:8 reward_function:\"'my_rewards.cartpole:upright'\"",
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])},
    ).check()
    experiment_dir = tmp_path / "logs" / "grpo" / "CartPole-v1_1"
    config = _load_config(experiment_dir, "CartPole-v1")
    assert config["group_size"] == 8
    assert config["reward_function"] == "my_rewards.cartpole:upright"
    assert (experiment_dir / "CartPole-v1.zip").is_file()


def test_bad_reward_function_path(tmp_path, run_cmd):
    # One clear line naming the path, the zoo's exit code (1), no stack trace
    run = run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n {N_STEPS} -f {tmp_path} --eval-freq -1 "
        "-params reward_function:\"'no_such_package.rewards:reward'\""
    )
    run.check(returncode=1)
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: "), last_line
    assert "no_such_package.rewards:reward" in last_line
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_missing_hyperparameters_exit_code(tmp_path, run_cmd, algo):
    # rl-zoo3's test_default_hyperparameters: an env with no entry (and no `default:`) ends the command with
    # exit code 1, the code of an uncaught error, for every algorithm; grpo says it in one line
    conf = tmp_path / "other.yml"
    conf.write_text("Acrobot-v1:\n  n_timesteps: !!float 1e3\n  policy: 'MlpPolicy'\n")
    run = run_cmd(f"python -m rl_zoo3.train --algo {algo} --env CartPole-v1 -n 128 -f {tmp_path} -conf {conf}")
    run.check(returncode=1)
    last_line = run.stderr.strip().splitlines()[-1]
    assert f"Hyperparameters not found for {algo}-CartPole-v1" in last_line, last_line
    if algo == "grpo":
        assert last_line.startswith("error: ") and "Traceback" not in run.stderr, run.stderr


def test_conf_file_yaml(tmp_path, run_cmd):
    # -conf other.yml still wins over grpo-zoo's hyperparams/grpo.yml
    conf = tmp_path / "other.yml"
    conf.write_text(
        textwrap.dedent(
            """
            CartPole-v1:
              n_envs: 4
              n_timesteps: !!float 1e3
              policy: 'MlpPolicy'
              group_mode: episode
              group_size: 2
              n_steps: 16
              batch_size: 32
            """
        )
    )
    run = run_cmd(f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n 128 -f {tmp_path} --eval-freq -1 -conf {conf}")
    run.check()
    assert f"Loading hyperparameters from: {conf}" in run.stdout
    config = _load_config(tmp_path / "grpo" / "CartPole-v1_1", "CartPole-v1")
    assert config["group_mode"] == "episode"
    assert config["group_size"] == 2


def test_conf_python_module(tmp_path, run_cmd):
    # -conf some.module: a Python package config (a `hyperparams` dict) still works
    (tmp_path / "my_grpo_config.py").write_text(
        textwrap.dedent(
            """
            hyperparams = {
                "CartPole-v1": dict(
                    n_envs=4, n_timesteps=1000, policy="MlpPolicy", group_mode="episode", group_size=4, n_steps=16,
                    batch_size=32, policy_kwargs="dict(net_arch=[32])",
                ),
            }
            """
        )
    )
    run = run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n 128 -f {tmp_path / 'logs'} --eval-freq -1 "
        "-conf my_grpo_config",
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])},
    )
    run.check()
    config = _load_config(tmp_path / "logs" / "grpo" / "CartPole-v1_1", "CartPole-v1")
    assert config["group_size"] == 4
    assert config["policy_kwargs"] == "dict(net_arch=[32])"


def test_checkpoints_follow_real_steps_with_episode_groups(tmp_path, run_cmd):
    # Episode groups step only their running members: checkpoints (--save-freq), evaluations and -P must still
    # come every N real steps (issue 12: saves landed at 992, 1791, 2491, 2786, ... for --save-freq 1000)
    conf = tmp_path / "episode.yml"
    conf.write_text(
        "CartPole-v1:\n  n_envs: 8\n  n_timesteps: !!float 4e3\n  policy: 'MlpPolicy'\n  group_mode: episode\n"
        "  group_size: 4\n  n_steps: 64\n  batch_size: 256\n  n_epochs: 1\n"
    )
    log_folder = tmp_path / "logs"
    run_cmd(f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -conf {conf} -f {log_folder} --save-freq 1000 -P").check()
    saved = sorted(int(p.stem.split("_")[2]) for p in (log_folder / "grpo" / "CartPole-v1_1").glob("rl_model_*_steps.zip"))
    assert len(saved) >= 3
    for k, steps in enumerate(saved, start=1):
        assert 1000 * k <= steps < 1000 * k + 8, saved  # as soon as k * 1000 real steps are taken
