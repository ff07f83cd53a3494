"""``rl_zoo3.train --algo grpo -optimize``: every tuning option of the zoo, in subprocesses (tiny budgets)."""

import glob
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch as th
import yaml
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The zoo's own train script with GRPO registered (same as `python -m rl_zoo3.train` once the hook is installed)
ZOO_TRAIN = [sys.executable, "-c", "from grpo_zoo.zoo.run import run_zoo_script; run_zoo_script('rl_zoo3.train')"]
# Tiny: 4 envs, episode groups, 2 evaluation episodes
TINY = ["--algo", "grpo", "--env", "CartPole-v1", "-n", "400", "--eval-episodes", "2", "-params", "n_envs:4"]
EPISODE = ["group_mode:'episode'", "train_continuations:False"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
CALLS = {"n": 0}


def diverging_reward(state: th.Tensor, action: th.Tensor, next_state: th.Tensor) -> th.Tensor:
    """Finite for a few calls, then NaN: a training run that diverges."""
    CALLS["n"] += 1
    reward = th.ones(state.shape[0], 1)
    return reward if CALLS["n"] <= 3 else reward * float("nan")


def run_zoo(*args: str, timeout: int = 240, returncode: int = 0) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run([*ZOO_TRAIN, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def load(storage: str, study_name: str) -> optuna.Study:
    if storage.endswith(".log"):
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    return optuna.load_study(study_name=study_name, storage=storage)


def test_journal_random_none_n_jobs_log_path_and_trial_id(tmp_path):
    """--storage *.log, --sampler random, --pruner none, --n-jobs 2, --optimization-log-path, report + plots, --trial-id."""
    storage, logs = str(tmp_path / "study.log"), str(tmp_path / "logs")
    run_zoo(
        *TINY, *EPISODE, "-optimize", "--n-trials", "2", "--n-jobs", "2", "--n-evaluations", "1",
        "--sampler", "random", "--pruner", "none", "--storage", storage, "--study-name", "journal",
        "--optimization-log-path", str(tmp_path / "trials"), "-f", logs,
    )  # fmt: skip
    study = load(storage, "journal")
    assert len(study.trials) == 2 and all(trial.state in FINISHED for trial in study.trials)
    assert study.trials[0].params["group_mode"] == "episode"
    reports = glob.glob(f"{logs}/grpo/report_CartPole-v1_2-trials-400-random-none_*.csv")
    assert len(reports) == 1
    assert len(glob.glob(reports[0].replace(".csv", "_*.png"))) >= 1
    assert (tmp_path / "trials" / "trial_0" / "evaluations.npz").is_file()

    # Retrain trial 0 (the zoo skips --trial-id 0: the patch handles it)
    trial = study.trials[0]
    run_zoo(
        *TINY, *EPISODE, "--storage", storage, "--study-name", "journal", "--trial-id", "0", "-f", str(tmp_path / "retrain")
    )
    (config,) = glob.glob(str(tmp_path / "retrain" / "grpo" / "CartPole-v1_1" / "CartPole-v1" / "config.yml"))
    saved = dict(yaml.load(Path(config).read_text(), Loader=yaml.UnsafeLoader))
    assert saved["group_size"] == trial.params["group_size"]
    assert saved["clip_range"] == trial.params["clip_range"]
    assert saved["n_steps"] == 2 ** trial.params["n_steps_pow"]


def test_sqlite_tpe_median_max_total_trials_and_resume(tmp_path):
    """--storage sqlite:///, --sampler tpe, --pruner median, --n-startup-trials, --max-total-trials, resume."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [
        *TINY, *EPISODE, "-optimize", "--n-trials", "10", "--n-evaluations", "2", "--sampler", "tpe", "--pruner", "median",
        "--n-startup-trials", "1", "--storage", storage, "--study-name", "sqlite", "-f", str(tmp_path / "logs"),
        "--no-optim-plots",
    ]  # fmt: skip
    run_zoo(*command, "--max-total-trials", "2")
    assert len(load(storage, "sqlite").trials) == 2
    # Same study, larger cap: resumes and adds one trial
    run_zoo(*command, "--max-total-trials", "3")
    study = load(storage, "sqlite")
    assert len(study.trials) == 3 and all(trial.state in FINISHED for trial in study.trials)
    assert len(glob.glob(str(tmp_path / "logs" / "grpo" / "report_*.csv"))) == 2


def test_divergence_is_pruned_and_the_study_goes_on(tmp_path):
    """A reward function that turns NaN: GRPO raises ValueError, the zoo prunes, the next trial runs, a report is written."""
    storage = str(tmp_path / "study.log")
    run_zoo(
        *TINY, *EPISODE, "reward_function:'tests.test_tune_zoo:diverging_reward'", "-optimize", "--n-trials", "2",
        "--n-evaluations", "1", "--sampler", "random", "--storage", storage, "--study-name", "nan",
        "-f", str(tmp_path / "logs"), "--no-optim-plots",
    )  # fmt: skip
    study = load(storage, "nan")
    assert [trial.state for trial in study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    assert all("non-finite" in trial.user_attrs["pruned_reason"] for trial in study.trials)
    assert glob.glob(str(tmp_path / "logs" / "grpo" / "report_*.csv"))


def test_yaml_group_mode_is_kept(tmp_path):
    """Without -params group_mode, the YAML's mode (time bins for CartPole) is what trials use, and they tune what
    it reads."""
    storage = str(tmp_path / "study.log")
    run_zoo(
        *TINY, "n_steps:8", "-optimize", "--n-trials", "1", "--n-evaluations", "1", "--sampler", "random",
        "--storage", storage, "--study-name", "yaml", "-f", str(tmp_path / "logs"), "--no-optim-plots",
    )  # fmt: skip
    (trial,) = load(storage, "yaml").trials
    assert trial.params["group_mode"] == "time"
    assert "noise_hold" in trial.params and not {"horizon", "group_size"} & set(trial.params)
    # Never a crash: complete, or pruned with the reason GRPO gave
    assert trial.state == TrialState.COMPLETE or trial.user_attrs.get("pruned_reason")


def test_params_switch_to_time_bins(tmp_path):
    """-params group_mode:'time' on the state-group Pendulum entry (the vine): the state keys are dropped with a
    warning, and the trial tunes what time bins read (noise_hold, no group_size) and the booleans of every mode."""
    storage = str(tmp_path / "study.log")
    result = run_zoo(
        "--algo", "grpo", "--env", "Pendulum-v1", "-n", "800", "--eval-episodes", "2", "-params", "n_envs:4",
        "group_mode:'time'", "-optimize", "--n-trials", "1", "--n-evaluations", "1", "--sampler", "random",
        "--storage", storage, "--study-name", "time", "-f", str(tmp_path / "logs"), "--no-optim-plots",
    )  # fmt: skip
    assert "dropped its group_size, horizon, branch_fraction, which only group_mode='state'" in result.stderr
    (trial,) = load(storage, "time").trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    assert trial.params["group_mode"] == "time" and trial.params["noise_hold"] in (1, 2, 4, 8, 16)
    assert not {"group_size", "horizon", "branch_fraction", "train_continuations"} & set(trial.params)
    assert {"leave_one_out", "dynamic_sampling", "normalize_advantage"} <= set(trial.params)
    # No probes in time bins: every simulator step is a real step
    assert trial.user_attrs["sim_steps"] == trial.user_attrs["real_steps"] >= 800


def test_optimize_spends_a_budget_of_simulator_steps(tmp_path):
    """-n is a budget of simulator steps (real + probe steps) per trial: state groups stop there, at most one rollout
    more, evaluate over it, and the trial records what it spent."""
    storage = str(tmp_path / "study.log")
    result = run_zoo(
        "--algo", "grpo", "--env", "CartPole-v1", "-n", "1500", "--eval-episodes", "2", "-params", "n_envs:4",
        "group_mode:'state'", "horizon:4", "branch_fraction:0.5", "-optimize", "--n-trials", "1", "--n-evaluations", "3",
        "--sampler", "random", "--pruner", "none", "--storage", storage, "--study-name", "sim",
        "-f", str(tmp_path / "logs"), "--no-optim-plots",
    )  # fmt: skip
    (trial,) = load(storage, "sim").trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    attrs = trial.user_attrs
    assert 1500 <= attrs["sim_steps"] <= 1500 + attrs["rollout_sim_steps_max"], attrs
    # Probe steps are counted: fewer real steps than simulator steps
    assert 0 < attrs["real_steps"] < attrs["sim_steps"] and attrs["cpu_seconds"] > 0
    # The last evaluation at the end of the budget (one may cover two points)
    assert max(trial.intermediate_values) == 3
    assert "counts simulator steps" in result.stdout
    assert f"Trial 0: {attrs['sim_steps']} simulator steps ({attrs['real_steps']} real) of a budget of 1500" in result.stdout
    # The zoo's algorithm is GRPO again once the study is over
    assert "SimulatorBudgetGRPO" not in result.stderr


@pytest.mark.parametrize("storage", ["sqlite:////proc/x/study.db", "/proc/x/study.log", "study.db"])
def test_unusable_storage_is_one_line(tmp_path, storage):
    """-optimize with a --storage that cannot be used: exit code 1, one `error:` line naming it and the fix."""
    result = run_zoo(
        *TINY, *EPISODE, "-optimize", "--n-trials", "1", "--storage", storage, "--study-name", "x",
        "-f", str(tmp_path / "logs"), "--no-optim-plots", returncode=1,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot use the Optuna storage `{storage}`"), line
    assert "--storage" in line, line
