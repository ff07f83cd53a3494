"""
Trials of dead workers, for any storage: count the trials towards the global cap, mark FAIL (and re-queue) the
trials whose worker process is gone or was interrupted. Storages themselves are opened by
:func:`grpo_zoo.zoo.studies.make_storage` (RDB storages get heartbeats: Optuna fails their stale trials).

Public Optuna API only (``study.tell``, the retry callback). Imports point down: ``grpo_zoo.zoo``, never the reverse.
"""

import os
import socket

import optuna
from optuna.trial import FrozenTrial, TrialState

from grpo_zoo.zoo.studies import retry_callback

# States that count towards the global trial cap. RUNNING ones count too, otherwise every worker
# starts one more trial when the cap is reached (as in rl_zoo3's `--max-total-trials`).
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# User attribute naming the process that runs a trial: "<hostname>:<pid>:<trial number>"
# (the number tells it from the attribute a retried trial inherits from the trial it retries)
WORKER_ATTR = "worker"
# User attribute of a trial stopped by Ctrl-C (FAIL for Optuna, run again on resume)
INTERRUPTED_ATTR = "interrupted"


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
            failed_trial = study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):
            # Finished meanwhile (ValueError: "Cannot tell a COMPLETE trial", or Optuna's UpdateFinishedTrialError)
            continue
        failed.append(trial)
        retry(study, failed_trial)
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
