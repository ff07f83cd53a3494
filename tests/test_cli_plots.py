"""``rl_zoo3.cli plot_train`` / ``all_plots`` (grpo beside ppo) and ``push_to_hub --help`` with grpo."""

import pickle

import pytest


@pytest.fixture(scope="session")
def ppo_beside_grpo(cartpole_run, run_cmd):
    """:return: the log folder holding the shared GRPO run and a short PPO run (2+ evaluations each)"""
    log_folder, _, _ = cartpole_run
    run_cmd(
        f"python -m rl_zoo3.train --algo ppo --env CartPole-v1 -n 512 --seed 0 --eval-freq 128 --eval-episodes 2 "
        f"-f {log_folder}"
    ).check()
    return log_folder


def test_plot_train(cartpole_run, run_cmd):
    # Training curve from the Monitor files (MPLBACKEND=Agg: plt.show() is a no-op)
    log_folder, _, _ = cartpole_run
    run_cmd(f"python -m rl_zoo3.cli plot_train -a grpo -e CartPole-v1 -f {log_folder} -w 5").check()
    run_cmd(f"python -m rl_zoo3.cli plot_train -a grpo -e CartPole-v1 -f {log_folder} -w 5 -x time -y length").check()


def test_all_plots_grpo_beside_ppo(ppo_beside_grpo, run_cmd, tmp_path):
    output = tmp_path / "results"
    run = run_cmd(
        f"python -m rl_zoo3.cli all_plots -a grpo ppo -e CartPole-v1 -f {ppo_beside_grpo} -l zoo "
        f"--no-display -max 100000 -o {output}"
    ).check()
    with open(f"{output}.pkl", "rb") as file:
        results = pickle.load(file)
    # One curve per algorithm in the CartPole-v1 figure, and both in the markdown table
    assert {"GRPO-zoo", "PPO-zoo"} <= set(results["CartPole-v1"])
    assert "GRPO" in run.stdout
    assert "PPO" in run.stdout


def test_push_to_hub_help(run_cmd):
    run = run_cmd("python -m rl_zoo3.push_to_hub --help").check()
    assert "grpo}" in run.stdout
