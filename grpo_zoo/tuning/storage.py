"""Optuna storages for tuning studies: journal file, SQLite, PostgreSQL/MySQL, and recovery of dead workers."""

import os
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

# States that count towards the global trial cap. RUNNING ones count too, otherwise every worker
# starts one more trial when the cap is reached (as in rl_zoo3's `--max-total-trials`).
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# User attribute naming the process that runs a trial: "<hostname>:<pid>:<trial number>"
# (the number tells it from the attribute a retried trial inherits from the trial it retries)
WORKER_ATTR = "worker"
# User attribute of a trial stopped by Ctrl-C (FAIL for Optuna, run again on resume)
INTERRUPTED_ATTR = "interrupted"


def retry_callback(max_retry: int) -> Any:
    """
    Optuna's callback that re-queues a FAIL trial with the same parameters (``system_attrs["retry_history"]``):
    ``RetryHeartbeatStaleTrialCallback`` since Optuna 4.9, ``RetryFailedTrialCallback`` before.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback_class = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        if callback_class is None:
            callback_class = optuna.storages.RetryFailedTrialCallback
        return callback_class(max_retry=max_retry)


def is_journal(storage: str) -> bool:
    """A path (not a URL): Optuna's journal file storage, as rl_zoo3's ``--storage *.log``."""
    return "://" not in storage


def make_storage(
    storage: str,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int = 3,
) -> BaseStorage:
    """
    Open a storage from a journal file path or any RDB URL (``sqlite:///``, ``postgresql://``, ``mysql://``).

    RDB storages get heartbeats: a trial whose worker stopped beating for ``grace_period`` seconds is
    marked FAIL by the next worker that starts a trial, and re-queued by Optuna's retry callback.
    Journal files have no heartbeat: :func:`fail_dead_local_trials` covers workers of this machine.

    :param storage: journal file path or SQLAlchemy URL (``postgresql://`` uses psycopg v3 with SQLAlchemy 2.1)
    :param heartbeat_interval: seconds between heartbeats (None: no heartbeat)
    :param grace_period: seconds without heartbeat before a trial is stale (default: 2 * interval)
    :param max_retry: how many times a trial killed mid-run is retried
    :return: the storage
    """
    if is_journal(storage):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(storage))
    engine_kwargs: dict = {"pool_pre_ping": True}
    if storage.startswith("sqlite"):
        # Several processes write the same file: wait for the lock instead of failing
        engine_kwargs = {"connect_args": {"timeout": 60}}
        path = storage.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if heartbeat_interval is None:
        return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs)
    return optuna.storages.RDBStorage(
        storage,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period or 2 * heartbeat_interval,
        failed_trial_callback=retry_callback(max_retry),
    )


def worker_name(trial_number: int) -> str:
    """``<hostname>:<pid>:<trial number>`` for a trial run by this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{trial_number}"


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def count_trials(study: optuna.Study, states: tuple[TrialState, ...] = COUNTED_STATES) -> int:
    """Number of trials of the study in the given states."""
    return len(study.get_trials(deepcopy=False, states=states))


def fail_dead_local_trials(study: optuna.Study, max_retry: int = 3) -> list[FrozenTrial]:
    """
    Mark FAIL (and re-queue) the RUNNING trials whose worker process ran on this machine and is gone
    (killed, crashed, interrupted study): what heartbeats do for RDB storages, for any storage.

    :param study: the study
    :param max_retry: how many times a trial is retried
    :return: the trials marked FAIL
    """
    hostname = socket.gethostname()
    retry = retry_callback(max_retry)
    failed: list[FrozenTrial] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, pid, number = ([*str(trial.user_attrs.get(WORKER_ATTR, "")).rsplit(":", 2), "", ""])[:3]
        if host != hostname or number != str(trial.number) or not pid.isdigit() or _is_alive(int(pid)):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except RuntimeError:
            # Finished meanwhile
            continue
        failed.append(trial)
        retry(study, study._storage.get_trial(trial._trial_id))
    return failed


def _retried_numbers(study: optuna.Study) -> set[int]:
    numbers: set[int] = set()
    for trial in study.get_trials(deepcopy=False):
        numbers.update(trial.system_attrs.get("retry_history", []))
    return numbers


def retry_interrupted_trials(study: optuna.Study, max_retry: int = 3) -> list[FrozenTrial]:
    """
    Re-queue the trials an interrupted run left FAIL (Ctrl-C), once: resuming the study runs them first.

    :param study: the study
    :param max_retry: how many times a trial is retried
    :return: the trials re-queued
    """
    retry = retry_callback(max_retry)
    retried = _retried_numbers(study)
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if trial.user_attrs.get(INTERRUPTED_ATTR) and trial.number not in retried:
            retry(study, trial)
            requeued.append(trial)
    return requeued
