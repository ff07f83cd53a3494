"""
One worker process of ``grpo_zoo.tune``: runs trials of the shared study until the global cap is reached.

Imports point down: :mod:`grpo_zoo.tuning.objective`, :mod:`grpo_zoo.tuning.storage` and ``grpo_zoo.zoo``.
"""

import argparse
import os
import sys
import time
import warnings
from typing import Any

import optuna
from optuna.pruners import BasePruner, MedianPruner, NopPruner, SuccessiveHalvingPruner
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.storages import fail_stale_trials as _fail_stale_trials
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from grpo_zoo.tuning.storage import COUNTED_STATES, count_trials, fail_dead_local_trials
from grpo_zoo.zoo.studies import make_storage, uses_heartbeats

# A worker gives up after this many trials in a row FAIL (not pruned: a bug, not bad hyperparameters)
MAX_CONSECUTIVE_FAILURES = 5


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's ``fail_stale_trials`` (experimental), as ``study.optimize`` calls it before each trial."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _fail_stale_trials(study)


def make_sampler(name: str, n_startup_trials: int, seed: int | None) -> BaseSampler:
    """Same samplers as rl_zoo3 (``constant_liar`` so parallel TPE workers do not propose the same point)."""
    if name == "random":
        return RandomSampler(seed=seed)
    if name == "tpe":
        return TPESampler(n_startup_trials=n_startup_trials, seed=seed, multivariate=True, constant_liar=True)
    raise ValueError(f"Unknown sampler: {name!r}, use 'random' or 'tpe'")


def make_pruner(name: str, n_startup_trials: int, n_evaluations: int) -> BasePruner:
    """Same pruners as rl_zoo3."""
    if name == "halving":
        return SuccessiveHalvingPruner(min_resource=1, reduction_factor=4, min_early_stopping_rate=0)
    if name == "median":
        return MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_evaluations // 3)
    if name == "none":
        return NopPruner()
    raise ValueError(f"Unknown pruner: {name!r}, use 'none', 'median' or 'halving'")


class _Progress:
    """Per-trial line on stdout, and a stop after too many failures in a row."""

    def __init__(self, worker_idx: int) -> None:
        self.worker_idx = worker_idx
        self.consecutive_failures = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        value = f" {trial.value:.2f}" if trial.value is not None else ""
        attrs = trial.user_attrs
        cost = f" ({attrs['sim_steps']} sim steps, {attrs['cpu_seconds']:.1f} CPU s)" if attrs.get("sim_steps") else ""
        reason = attrs.get("pruned_reason", "") if trial.state == TrialState.PRUNED else ""
        print(f"[worker {self.worker_idx}] trial {trial.number} {trial.state.name}{value}{cost} {reason}".rstrip(), flush=True)
        self.consecutive_failures = self.consecutive_failures + 1 if trial.state == TrialState.FAIL else 0
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            print(f"[worker {self.worker_idx}] {self.consecutive_failures} trials failed in a row: stopping", flush=True)
            study.stop()


def run_worker(args: argparse.Namespace, storage_url: str, cap: int, worker_idx: int, sampler_seed: int | None) -> None:
    """
    Load the study and run trials until ``cap`` trials are COMPLETE, PRUNED or RUNNING and none is WAITING
    (a retried trial is waiting: it must run even when the cap is reached, otherwise it would be lost).

    :param args: parsed ``grpo_zoo.tune`` arguments
    :param storage_url: journal path or RDB URL
    :param cap: global trial cap of the study
    :param worker_idx: index of the worker (for the logs)
    :param sampler_seed: seed of the sampler (distinct per worker)
    """
    import torch as th

    # Workers are processes: one thread each
    th.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from grpo_zoo.tuning.objective import MultiSeedObjective, make_exp_manager

    storage = make_storage(storage_url, args.heartbeat_interval, args.grace_period, args.max_retry)
    study = optuna.load_study(
        study_name=args.study_name,
        storage=storage,
        sampler=make_sampler(args.sampler, args.n_startup_trials, sampler_seed),
        pruner=make_pruner(args.pruner, args.n_startup_trials, args.n_evaluations),
    )
    exp_manager = make_exp_manager(args)
    seeds = [args.seed + i for i in range(args.n_seeds)]
    objective = MultiSeedObjective(exp_manager, seeds, args.statistic, args.seed_statistic)
    progress = _Progress(worker_idx)
    callbacks: list[Any] = [MaxTrialsCallback(cap, states=COUNTED_STATES), progress]
    heartbeat = uses_heartbeats(storage_url, args.heartbeat_interval)
    while progress.consecutive_failures < MAX_CONSECUTIVE_FAILURES:
        # Trials of dead workers: FAIL and re-queued (heartbeat: any machine; otherwise: this machine)
        if heartbeat:
            fail_stale_trials(study)
        else:
            fail_dead_local_trials(study, args.max_retry)
        if count_trials(study) < cap or count_trials(study, (TrialState.WAITING,)) > 0:
            study.optimize(objective, callbacks=callbacks, gc_after_trial=True, catch=(Exception,))
        elif heartbeat and count_trials(study, (TrialState.RUNNING,)) > 0:
            # Cap reached, but a running trial may belong to a dead worker: stay until it ends or goes stale,
            # to run its retry (otherwise the trial would be lost, or stuck RUNNING)
            time.sleep(min(args.heartbeat_interval, 5))
        else:
            break
    sys.exit(1 if progress.consecutive_failures >= MAX_CONSECUTIVE_FAILURES else 0)
