"""
Distributed tuning on a real PostgreSQL server: the zoo's ``--storage postgresql://``, and ``grpo_zoo.tune``
workers sharing one study with a global cap, one of them killed mid-trial and recovered through heartbeats.

The server comes from ``.ci/postgres.sh`` (``GRPO_ZOO_TEST_POSTGRES_URL``). In CI (``CI=true``) the variable
must be set: a missing server is a failure, not a skip. Elsewhere the script is started here, or the tests skip.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO_ROOT = Path(__file__).resolve().parents[1]
URL_VAR = "GRPO_ZOO_TEST_POSTGRES_URL"
ZOO_TRAIN = [sys.executable, "-c", "from grpo_zoo.zoo.run import run_zoo_script; run_zoo_script('rl_zoo3.train')"]
TINY_PARAMS = ["-params", "n_envs:4", "group_mode:'episode'", "train_continuations:False"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _env() -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.fixture(scope="module")
def postgres_url():
    url = os.environ.get(URL_VAR)
    if url:
        yield url
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{URL_VAR} is not set: .ci/run must `source .ci/postgres.sh` before the tests")
    # Local run: start a throwaway server with the CI script
    result = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "postgres.sh")], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"no PostgreSQL server ({URL_VAR} unset and .ci/postgres.sh failed: {result.stderr[-500:]})")
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines() if line.startswith("export ")
    )
    exports = {key: value.strip("'") for key, value in exports.items()}
    yield exports[URL_VAR]
    subprocess.run(exports["_GRPO_ZOO_PG_STOP"].split(), capture_output=True, timeout=60)
    subprocess.run(["rm", "-rf", exports["GRPO_ZOO_TEST_POSTGRES_DATA"]], timeout=60)


def test_zoo_postgres_storage_halving(postgres_url, tmp_path):
    """rl_zoo3 -optimize with --storage postgresql:// (psycopg 3) and --pruner halving."""
    study_name = f"zoo-{uuid.uuid4().hex[:8]}"
    command = [
        *ZOO_TRAIN, "--algo", "grpo", "--env", "CartPole-v1", "-n", "400", "--eval-episodes", "2", *TINY_PARAMS,
        "-optimize", "--n-trials", "2", "--n-evaluations", "2", "--sampler", "random", "--pruner", "halving",
        "--storage", postgres_url, "--study-name", study_name, "-f", str(tmp_path), "--no-optim-plots",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    assert len(study.trials) == 2 and all(trial.state in FINISHED for trial in study.trials)
    # The patched zoo gave the storage heartbeats
    import sqlalchemy as sa

    query = sa.text(
        "SELECT COUNT(*) FROM trial_heartbeats h JOIN trials t ON h.trial_id = t.trial_id "
        "JOIN studies s ON t.study_id = s.study_id WHERE s.study_name = :name"
    )
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(query, {"name": study_name}).scalar() == 2
    engine.dispose()


def _states(study: optuna.Study) -> list[TrialState]:
    return [trial.state for trial in study.get_trials(deepcopy=False)]


def test_three_workers_global_cap_and_killed_worker(postgres_url, tmp_path):
    """
    Three `grpo_zoo.tune` processes (as on three machines) share one study capped at N trials.
    One is SIGKILLed mid-trial: the others see its heartbeat stop, mark the trial FAIL and run its retry.
    End: N finished trials (at most workers-1 more), the killed one retried, nothing RUNNING or WAITING.
    """
    n_cap, n_workers = 5, 3
    study_name = f"workers-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=study_name, storage=postgres_url, direction="maximize")
    command = [
        sys.executable, "-m", "grpo_zoo.tune", "--env", "CartPole-v1", "-n", "800", "--eval-episodes", "2", *TINY_PARAMS,
        "--n-evaluations", "2", "--storage", postgres_url, "--study-name", study_name, "--max-total-trials", str(n_cap),
        "--workers", "1", "--sampler", "random", "--pruner", "none", "--heartbeat-interval", "1", "--grace-period", "4",
        "-f", str(tmp_path), "--no-plots", "--progress-interval", "1",
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=_env(),
            stdout=open(tmp_path / f"worker{i}.txt", "w"),
            stderr=subprocess.STDOUT,
            # Own process group: the kill takes the tune process and its worker, as a machine going down
            start_new_session=True,
        )
        for i in range(n_workers)
    ]
    try:
        study = optuna.load_study(study_name=study_name, storage=postgres_url)
        victim, killed_number = processes[0], None
        deadline = time.time() + 180
        while killed_number is None and time.time() < deadline:
            time.sleep(0.3)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                worker_pid = int(trial.user_attrs.get("worker", "::0").rsplit(":", 2)[1] or 0)
                # The victim's worker is a child of the victim (same process group); kill it while it trains
                try:
                    in_victim = worker_pid > 0 and os.getpgid(worker_pid) == victim.pid
                except ProcessLookupError:
                    in_victim = False
                if in_victim and "activation_fn" in trial.params:
                    os.killpg(victim.pid, signal.SIGKILL)
                    killed_number = trial.number
                    break
        assert killed_number is not None, "no trial of the first worker started"
        victim.wait(timeout=30)
        for process in processes[1:]:
            assert process.wait(timeout=240) == 0, (tmp_path / "worker1.txt").read_text()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    states = _states(study)
    assert states.count(TrialState.RUNNING) == 0 and states.count(TrialState.WAITING) == 0
    n_finished = sum(state in FINISHED for state in states)
    assert n_cap <= n_finished <= n_cap + n_workers - 1, states
    # The killed trial: FAIL (stale heartbeat), and run again with the same parameters
    killed = study.trials[killed_number]
    assert killed.state == TrialState.FAIL
    retries = [trial for trial in study.trials if killed_number in trial.system_attrs.get("retry_history", [])]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert killed.params and killed.params.items() <= retries[0].params.items()
    # Nothing lost: every trial but the killed one finished
    assert states.count(TrialState.FAIL) == 1
