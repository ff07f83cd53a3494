"""``python -m grpo_zoo.tune``: worker processes, default persistent storage, multi-seed scores, report, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from grpo_zoo.tuning.objective import MultiSeedObjective

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO_ROOT = Path(__file__).resolve().parents[1]
TUNE = [sys.executable, "-m", "grpo_zoo.tune"]
# Tiny: 4 envs, episode groups, 2 evaluation episodes
TINY = ["--env", "CartPole-v1", "-n", "400", "--eval-episodes", "2", "--progress-interval", "0.5"]
PARAMS = ["-params", "n_envs:4", "group_mode:'episode'", "train_continuations:False"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _env() -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def run_tune(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([*TUNE, *args], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def journal(path: Path, study_name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name=study_name, storage=storage)


def test_workers_default_storage_report_and_resume(tmp_path):
    logs = tmp_path / "logs"
    common = [*TINY, *PARAMS, "-f", str(logs), "--n-seeds", "2", "--statistic", "best", "--n-evaluations", "2"]
    result = run_tune(*common, "--n-trials", "3", "--workers", "2", "--sampler", "random", "--pruner", "none")
    assert "[tune] " in result.stdout and "complete" in result.stdout

    # Persistent default storage: a journal file in the log folder
    storage = logs / "grpo" / "tune" / "grpo_CartPole-v1.log"
    study = journal(storage, "grpo_CartPole-v1")
    assert len(study.trials) == 3 and all(trial.state in FINISHED for trial in study.trials)
    # Two worker processes ran the trials
    assert len({trial.user_attrs["worker"].rsplit(":", 2)[1] for trial in study.trials}) == 2
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert len(trial.user_attrs["seed_scores"]) == 2
        assert trial.value == pytest.approx(np.mean(trial.user_attrs["seed_scores"]))
        # Seed k reports at steps 2k+1, 2k+2: no overlap
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
        # Score of a seed: best of its evaluations
        best_of_seed = [max(trial.intermediate_values[2 * k + 1], trial.intermediate_values[2 * k + 2]) for k in range(2)]
        assert trial.user_attrs["seed_scores"] == pytest.approx(best_of_seed)

    # Report: CSV, ready-to-paste YAML entry, summary, plots
    out = logs / "grpo" / "tune" / "grpo_CartPole-v1"
    summary = json.loads((out / "grpo_CartPole-v1_summary.json").read_text())
    assert summary["n_trials"] == 3
    assert (out / "grpo_CartPole-v1_trials.csv").is_file()
    assert (out / "grpo_CartPole-v1_history.png").stat().st_size > 0
    if summary.get("best_value") is not None:
        text = (out / "grpo_CartPole-v1_best.yml").read_text()
        assert "!!float" in text and text.startswith("# Tuned with grpo_zoo.tune")
        entry = yaml.safe_load(text)["CartPole-v1"]
        assert entry["group_mode"] == "episode" and entry["n_envs"] == 4
        assert entry["group_size"] == study.best_params["group_size"]
        assert isinstance(entry["policy_kwargs"], str) and isinstance(entry["n_timesteps"], float)

    # A worker of an earlier run died mid-trial (trial left RUNNING, its process gone)
    dead = subprocess.run(
        [
            sys.executable,
            "-c",
            "import optuna, sys; from grpo_zoo.tuning.storage import worker_name;"
            "from grpo_zoo.zoo.studies import make_storage;"
            "study = optuna.load_study(study_name='grpo_CartPole-v1', storage=make_storage(sys.argv[1]));"
            "trial = study.ask(study.trials[0].distributions); trial.set_user_attr('worker', worker_name(trial.number));"
            "print(trial.number)",
            str(storage),
        ],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    dead_number = int(dead.stdout.strip())
    assert journal(storage, "grpo_CartPole-v1").trials[dead_number].state == TrialState.RUNNING

    # Resume: same command, one more trial; the dead trial is re-run first
    result = run_tune(*common, "--n-trials", "1", "--workers", "1", "--sampler", "tpe", "--pruner", "median")
    assert f"trial {dead_number} was interrupted: queued again" in result.stdout
    assert "resuming study" in result.stdout
    study = journal(storage, "grpo_CartPole-v1")
    states = [trial.state for trial in study.trials]
    assert states.count(TrialState.RUNNING) == 0 and states.count(TrialState.WAITING) == 0
    assert study.trials[dead_number].state == TrialState.FAIL
    (retry,) = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == dead_number]
    assert retry.state in FINISHED and retry.params == study.trials[dead_number].params
    # 3 + the retry (the cap counts the dead one's retry, not the FAIL)
    assert sum(state in FINISHED for state in states) == 4


def test_state_groups_spend_a_budget_of_simulator_steps(tmp_path):
    """-n counts simulator steps: each seed of a state-group trial stops there (at most one rollout more), and the
    trial's cost (simulator steps, real steps, CPU seconds) is in the study, the CSV and the summary."""
    logs = tmp_path / "logs"
    result = run_tune(
        "--env", "CartPole-v1", "-n", "2000", "--eval-episodes", "2", "--progress-interval", "0.5", "-f", str(logs),
        "-params", "group_mode:'state'", "horizon:4", "branch_fraction:0.5", "--n-trials", "2", "--n-seeds", "2",
        "--n-evaluations", "3",
        "--sampler", "random", "--pruner", "none", "--no-plots",
    )  # fmt: skip
    study = journal(logs / "grpo" / "tune" / "grpo_CartPole-v1.log", "grpo_CartPole-v1")
    assert [trial.params["group_mode"] for trial in study.trials] == ["state", "state"]
    assert all(trial.state == TrialState.COMPLETE for trial in study.trials), [t.user_attrs for t in study.trials]
    for trial in study.trials:
        attrs = trial.user_attrs
        for sim_steps, real_steps in zip(attrs["seed_sim_steps"], attrs["seed_real_steps"], strict=True):
            assert 2000 <= sim_steps <= 2000 + attrs["rollout_sim_steps_max"], attrs
            assert 0 < real_steps < sim_steps
        assert attrs["sim_steps"] == sum(attrs["seed_sim_steps"]) and attrs["real_steps"] == sum(attrs["seed_real_steps"])
        assert attrs["cpu_seconds"] == pytest.approx(sum(attrs["seed_cpu_seconds"]), abs=0.01) and attrs["cpu_seconds"] > 0
        # Each seed's last evaluation at the end of its budget
        assert {3, 6} <= set(trial.intermediate_values) <= set(range(1, 7))

    out = logs / "grpo" / "tune" / "grpo_CartPole-v1"
    table = pd.read_csv(out / "grpo_CartPole-v1_trials.csv")
    assert list(table.columns[2:6]) == ["value", "user_attrs_sim_steps", "user_attrs_real_steps", "user_attrs_cpu_seconds"]
    assert table["user_attrs_cpu_seconds"].tolist() == [trial.user_attrs["cpu_seconds"] for trial in study.trials]
    summary = json.loads((out / "grpo_CartPole-v1_summary.json").read_text())
    assert summary["cpu_seconds"] == pytest.approx(sum(trial.user_attrs["cpu_seconds"] for trial in study.trials), abs=0.01)
    best = study.best_trial
    assert summary["best_cpu_seconds"] == best.user_attrs["cpu_seconds"]
    assert summary["best_sim_steps"] == best.user_attrs["sim_steps"]
    assert "Training CPU seconds of the study" in result.stdout and " CPU s" in result.stdout
    assert "2000 simulator steps (real + probe steps) per trial" in (out / "grpo_CartPole-v1_best.yml").read_text()


def test_divergence_is_pruned_with_reason(tmp_path):
    storage = str(tmp_path / "nan.log")
    result = run_tune(
        *TINY, *PARAMS, "reward_function:'tests.test_tune_zoo:diverging_reward'", "--n-trials", "2", "--storage", storage,
        "--study-name", "nan", "-f", str(tmp_path), "--sampler", "random", "--no-plots",
    )  # fmt: skip
    study = journal(Path(storage), "nan")
    assert [trial.state for trial in study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    # The first trial diverges while training; the reward function is still NaN when the second one builds its model
    assert study.trials[0].user_attrs["pruned_reason"].startswith("diverged")
    assert all("non-finite" in trial.user_attrs["pruned_reason"] for trial in study.trials)
    assert "non-finite" in result.stdout
    summary = json.loads((tmp_path / "grpo" / "tune" / "nan" / "nan_summary.json").read_text())
    assert summary["states"] == {"PRUNED": 2} and "best_value" not in summary


# --storage values that cannot be used, and what the one-line error must say
UNUSABLE_STORAGES = {
    "sqlite:////proc/x/study.db": "sqlite:///",  # a folder that cannot be created (even as root)
    "/proc/x/study.log": "journal file",
    "{a_file}/study.log": "journal file",  # a regular file where a folder should be
    "postgresql://nobody:secret@127.0.0.1:9/nothing": "server",  # no server there
}


@pytest.mark.parametrize("storage", list(UNUSABLE_STORAGES))
def test_unusable_storage_is_one_line(tmp_path, storage):
    """An unusable --storage: exit code 1 and one `error:` line naming the storage and the fix, no traceback."""
    (tmp_path / "a_file").write_text("")
    path = storage.format(a_file=tmp_path / "a_file")
    result = subprocess.run(
        [*TUNE, *TINY, *PARAMS, "--n-trials", "1", "--storage", path, "-f", str(tmp_path / "logs")],
        cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot use the Optuna storage `{path.replace('nobody:secret@', '')}`"), line
    assert UNUSABLE_STORAGES[storage] in line and "secret" not in line, line


def test_cli_arguments():
    from grpo_zoo.tune import parse_args

    args = parse_args(["--env", "Pendulum-v1", "-f", "x", "-params", "group_size:8", "clip_range:0.3"])
    assert args.study_name == "grpo_Pendulum-v1"
    assert args.storage == os.path.join("x", "grpo", "tune", "grpo_Pendulum-v1.log")
    assert args.hyperparams == {"group_size": 8, "clip_range": 0.3}
    assert args.env_kwargs is None
    # -params and --env-kwargs as rl_zoo3.train reads them (rl_zoo3.utils.StoreDict): a value may hold ":"
    zoo_args = ["-params", "reward_function:'reward_fns.cartpole:reward'", "--env-kwargs", "max_episode_steps:200"]
    args = parse_args(zoo_args)
    assert args.hyperparams == {"reward_function": "reward_fns.cartpole:reward"}
    assert args.env_kwargs == {"max_episode_steps": 200}
    with pytest.raises(SystemExit):
        parse_args(["--workers", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--statistic", "median"])
    # A trial's score over its seeds: the mean unless asked (studies started before the option averaged them)
    assert parse_args([]).seed_statistic == "mean"
    assert parse_args(["--n-seeds", "3", "--seed-statistic", "worst"]).seed_statistic == "worst"
    with pytest.raises(SystemExit):
        parse_args(["--seed-statistic", "best"])


# Evaluations of each seed of a fake trial (2 per seed): seed 1 fails where seeds 0 and 2 learn
FAKE_EVALUATIONS = {0: [50.0, 100.0], 1: [10.0, 20.0], 2: [200.0, 300.0]}


class FakeSeedsObjective(MultiSeedObjective):
    """MultiSeedObjective whose seeds are not trained: each reports FAKE_EVALUATIONS as its evaluation callback would."""

    def __init__(self, statistic: str, seed_statistic: str) -> None:
        # What the sampler reads of an ExperimentManager (time bins: no group size); no env is built
        exp_manager = SimpleNamespace(
            _hyperparams={"group_mode": "time"}, custom_hyperparams=None, n_timesteps=4000, n_actions=0, n_envs=4
        )
        super().__init__(exp_manager, list(FAKE_EVALUATIONS), statistic, seed_statistic)

    def _run_seed(self, trial, kwargs, seed, seed_scores):
        evaluations = FAKE_EVALUATIONS[seed]
        for e in range(1, len(evaluations) + 1):
            trial.report(self.intermediate_value(seed_scores, evaluations[:e]), len(seed_scores) * 2 + e)
        return evaluations


@pytest.mark.parametrize(
    "seed_statistic,statistic,score,reported",
    [
        # Seed scores (last evaluation): 100, 20, 300. Reported: each seed's evaluation, as before the option
        ("mean", "last", 140.0, [50, 100, 10, 20, 200, 300]),
        # The trial's score had it ended at each evaluation: seed 1's failure is reported at every later step
        ("worst", "last", 20.0, [50, 100, 10, 20, 20, 20]),
        ("median", "last", 100.0, [50, 100, 55, 60, 100, 100]),
        # Seed scores (best evaluation): 100, 20, 300; seed 2 so far: 200, then 300
        ("worst", "best", 20.0, [50, 100, 10, 20, 20, 20]),
        # Seed scores (mean of evaluations): 75, 15, 250; median so far of [75, 10], [75, 15], [75, 15, 200], [75, 15, 250]
        ("median", "mean", 75.0, [50, 75, 42.5, 45, 75, 75]),
    ],
)
def test_seed_statistic_scores_the_trial_and_what_the_pruner_sees(seed_statistic, statistic, score, reported):
    """--seed-statistic worst picks the worst seed, median the median; intermediate values follow the statistic."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(FakeSeedsObjective(statistic, seed_statistic), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    assert trial.value == pytest.approx(score)
    assert trial.user_attrs["seed_evaluations"] == list(FAKE_EVALUATIONS.values())
    assert [trial.intermediate_values[step] for step in range(1, 7)] == pytest.approx(reported)


def test_seed_statistic_is_checked():
    with pytest.raises(ValueError, match="`seed_statistic` must be one of"):
        MultiSeedObjective(None, [0, 1, 2], "mean", "min")


def test_studies_started_before_the_seed_statistic_averaged_their_seeds():
    """A study that recorded its settings but no seed statistic was scored by the mean: resumed and reported as such."""
    from grpo_zoo.tune import parse_args, study_setting

    args = parse_args(["--n-seeds", "3", "--seed-statistic", "worst"])
    old = optuna.create_study()
    old.set_user_attr("command", "python -m grpo_zoo.tune --n-seeds 3")
    old.set_user_attr("n_seeds", 3)
    assert study_setting(old, args, "seed_statistic") == "mean" and study_setting(old, args, "n_seeds") == 3
    # A study not started yet takes this run's settings
    assert study_setting(optuna.create_study(), args, "seed_statistic") == "worst"


def test_worst_seed_study_of_time_bins(tmp_path):
    """--n-seeds 3 --seed-statistic worst on a time-bin entry (-params group_mode): the score is the worst seed, the
    pruner sees the worst so far, the setting is in the study, the summary and the YAML entry's comment."""
    logs = tmp_path / "logs"
    result = run_tune(
        *TINY, "-params", "n_envs:4", "group_mode:'time'", "-f", str(logs), "--n-trials", "2", "--n-seeds", "3",
        "--seed-statistic", "worst", "--n-evaluations", "2", "--sampler", "random", "--pruner", "none", "--no-plots",
    )  # fmt: skip
    study = journal(logs / "grpo" / "tune" / "grpo_CartPole-v1.log", "grpo_CartPole-v1")
    assert study.user_attrs["seed_statistic"] == "worst" and study.user_attrs["n_seeds"] == 3
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete, [trial.user_attrs.get("pruned_reason") for trial in study.trials]
    for trial in complete:
        assert trial.params["group_mode"] == "time" and "group_size" not in trial.params and "noise_hold" in trial.params
        evaluations, scores = trial.user_attrs["seed_evaluations"], trial.user_attrs["seed_scores"]
        assert len(evaluations) == len(scores) == 3
        # Score of a seed: the mean of its evaluations (--statistic mean); of the trial: the worst seed
        assert scores == pytest.approx([np.mean(values) for values in evaluations])
        assert trial.value == pytest.approx(min(scores))
        # Seed k reports at steps 2k+1, 2k+2 the worst of the finished seeds and of its own mean so far
        for k, values in enumerate(evaluations):
            steps = sorted(step for step in trial.intermediate_values if 2 * k < step <= 2 * k + 2)
            assert steps, trial.intermediate_values
            for j, step in enumerate(steps):
                assert trial.intermediate_values[step] == pytest.approx(min([*scores[:k], np.mean(values[: j + 1])]))

    out = logs / "grpo" / "tune" / "grpo_CartPole-v1"
    summary = json.loads((out / "grpo_CartPole-v1_summary.json").read_text())
    assert summary["settings"]["seed_statistic"] == "worst" and summary["settings"]["n_seeds"] == 3
    assert summary["best_value"] == pytest.approx(min(summary["best_seed_scores"]))
    assert "worst of seeds" in result.stdout
    text = (out / "grpo_CartPole-v1_best.yml").read_text()
    assert "3 seed(s) x 400 simulator steps" in text and "score = worst (minimum) over seeds of the mean" in text
    entry = yaml.safe_load(text)["CartPole-v1"]
    # The CartPole entry is state groups: switched to time bins, without the keys time bins do not read
    assert entry["group_mode"] == "time" and "noise_hold" in entry
    assert not {"group_size", "horizon", "branch_fraction", "train_continuations", "exhaustive"} & set(entry), entry
