"""
Tune GRPO with Optuna: N worker processes on one (persistent, resumable, shareable) study.

What rl_zoo3's ``-optimize`` lacks, on top of the same sampler (:mod:`grpo_zoo.zoo.sampler`) and the same
env building (rl_zoo3's ``ExperimentManager``):

- worker *processes* (not GIL-bound threads), with a global trial cap (COMPLETE + PRUNED + RUNNING);
- each trial scored over ``--n-seeds`` seeds: the mean, median or worst (``--seed-statistic``) of each seed's
  last, best or mean evaluation (``--statistic``); the worst of 3 seeds or more chooses an entry for working on
  every seed, not for one lucky seed;
- every seed of every trial spends the same budget of *simulator steps* (``-n``, else the YAML
  ``n_timesteps``): real steps plus GRPO's probe steps, which cost what a real step costs; training stops once
  ``num_timesteps + num_probe_steps`` reaches it (at most one rollout more) and the evaluations are spaced over
  it. Each trial records what it spent (user attributes ``sim_steps``, ``real_steps`` and ``cpu_seconds``:
  CPU seconds of training, evaluations excluded), shown in the CSV, the summary and the progress lines;
- a persistent study by default (journal file in the log folder), resumed by running the same command;
- any Optuna storage URL, e.g. ``postgresql://user@host/db`` to share a study between machines:
  RDB storages use heartbeats, a worker killed mid-trial has its trial marked FAIL and re-run;
- the best trial written as a ready-to-paste ``hyperparams/grpo.yml`` entry, a CSV and PNG plots.

Example::

    python -m grpo_zoo.tune --env CartPole-v1 -n 20000 --n-trials 30 --workers 2 --n-seeds 2
    python -m grpo_zoo.tune --env CartPole-v1 -n 20000 --n-trials 30 --workers 2 --n-seeds 3 --seed-statistic worst
    python -m grpo_zoo.tune --env CartPole-v1 --storage postgresql://user@host/db --study-name cartpole \\
        --max-total-trials 100 --workers 4   # on each machine

Imports point down: this command uses ``grpo_zoo.tuning``, which uses ``grpo_zoo.zoo``.
"""

import argparse
import multiprocessing as mp
import os
import re
import shlex
import sys
import time
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState
from rl_zoo3.utils import StoreDict

from grpo_zoo.tuning.objective import SEED_STATISTICS, STATISTICS
from grpo_zoo.tuning.storage import count_trials, fail_dead_local_trials, retry_interrupted_trials
from grpo_zoo.zoo.studies import StorageError, make_storage, storage_errors, storage_label

# Settings a study records in its user attributes (a resumed or report-only run reads them from there)
SETTINGS = ("env", "n_timesteps", "n_seeds", "statistic", "seed_statistic", "n_evaluations")
# What a study started before a setting was recorded used: its seeds' scores were averaged
SETTINGS_BEFORE_RECORDED = {"seed_statistic": "mean"}
# How the YAML comment names a seed statistic
SEED_STATISTIC_WORDS = {"mean": "mean", "median": "median", "worst": "worst (minimum)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (names follow ``rl_zoo3.train`` where they mean the same)."""
    parser = argparse.ArgumentParser(
        prog="python -m grpo_zoo.tune",
        description=__doc__.split("\n\n")[0],
        epilog="Trials are compared at a fixed cost: -n counts simulator steps (real + probe steps); each trial "
        "records sim_steps, real_steps and cpu_seconds (training CPU seconds, evaluations excluded), shown in the "
        "report's CSV and summary.",
    )
    parser.add_argument("--env", type=str, default="CartPole-v1", help="Environment id")
    parser.add_argument(
        "-n",
        "--n-timesteps",
        type=int,
        default=-1,
        help="Budget of one seed of a trial in simulator steps: real + probe steps (default: the YAML n_timesteps)",
    )
    parser.add_argument("--n-trials", type=int, default=20, help="Trials to add to the study (0: only write the report)")
    parser.add_argument(
        "--max-total-trials",
        type=int,
        default=None,
        help="Cap on the trials of the study, all machines (overrides --n-trials)",
    )
    parser.add_argument("-w", "--workers", type=int, default=1, help="Worker processes")
    parser.add_argument("--n-seeds", type=int, default=1, help="Seeds per trial (score: --seed-statistic over seeds)")
    parser.add_argument("--seed", type=int, default=0, help="First seed of each trial (seeds: seed, seed+1, ...)")
    parser.add_argument("--statistic", choices=STATISTICS, default="mean", help="Score of one seed from its evaluations")
    parser.add_argument(
        "--seed-statistic",
        choices=SEED_STATISTICS,
        default="mean",
        help="Score of a trial from its seeds' scores; worst: the minimum (reliability: --n-seeds 3 --seed-statistic worst)",
    )
    parser.add_argument("--n-evaluations", type=int, default=5, help="Evaluations per seed (intermediate values)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="Episodes per evaluation")
    parser.add_argument("--n-eval-envs", type=int, default=1, help="Envs for evaluation")
    parser.add_argument("--sampler", choices=["random", "tpe"], default="tpe", help="Optuna sampler")
    parser.add_argument("--pruner", choices=["none", "median", "halving"], default="median", help="Optuna pruner")
    parser.add_argument("--n-startup-trials", type=int, default=5, help="Trials before TPE and the median pruner kick in")
    parser.add_argument("--storage", type=str, default=None, help="Journal file path or RDB URL (default: journal in -f)")
    parser.add_argument("--study-name", type=str, default=None, help="Study name (default: grpo_<env>)")
    parser.add_argument("-f", "--log-folder", type=str, default="logs", help="Log folder")
    parser.add_argument("--output-dir", type=str, default=None, help="Report folder (default: <log-folder>/grpo/tune/<study>)")
    parser.add_argument("-conf", "--conf-file", type=str, default=None, help="Hyperparameter YAML (default: grpo.yml)")
    # Parsed as rl_zoo3.train parses them (each value is evaluated as Python)
    parser.add_argument(
        "-params",
        "--hyperparams",
        type=str,
        nargs="+",
        action=StoreDict,
        default=None,
        help="Frozen hyperparameters (e.g. group_size:4)",
    )
    parser.add_argument(
        "--env-kwargs", type=str, nargs="+", action=StoreDict, default=None, help="Env kwargs (e.g. max_episode_steps:200)"
    )
    parser.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy", help="VecEnv type")
    parser.add_argument("--device", type=str, default="cpu", help="PyTorch device")
    parser.add_argument("--heartbeat-interval", type=int, default=60, help="RDB storages: seconds between heartbeats")
    parser.add_argument("--grace-period", type=int, default=None, help="RDB storages: seconds before a silent trial fails")
    parser.add_argument("--max-retry", type=int, default=3, help="Retries of a trial whose worker died")
    parser.add_argument("--progress-interval", type=float, default=5.0, help="Seconds between progress lines")
    parser.add_argument("--no-plots", action="store_true", default=False, help="Do not write PNG plots")
    args = parser.parse_args(argv)
    if args.study_name is None:
        args.study_name = "grpo_" + re.sub(r"[^A-Za-z0-9_.-]", "_", args.env)
    args.tune_folder = os.path.join(args.log_folder, "grpo", "tune")
    if args.storage is None:
        args.storage = os.path.join(args.tune_folder, f"{args.study_name}.log")
    args.output_dir = args.output_dir or os.path.join(args.tune_folder, args.study_name)
    if args.workers < 1 or args.n_seeds < 1 or args.n_evaluations < 1:
        parser.error("--workers, --n-seeds and --n-evaluations must be >= 1")
    return args


def base_hyperparams(args: argparse.Namespace) -> dict[str, Any]:
    """The env's entry of the YAML the study runs with (``atari`` or ``default`` as the zoo picks), with ``-params``."""
    from grpo_zoo.zoo.register import grpo_hyperparams_path, zoo_entry_key

    with open(args.conf_file or grpo_hyperparams_path()) as file_handler:
        hyperparams_dict = yaml.safe_load(file_handler)
    key = zoo_entry_key(hyperparams_dict, args.env)
    hyperparams = dict(hyperparams_dict[key]) if key is not None else {}
    # -params override the YAML, as in the zoo
    return {**hyperparams, **(args.hyperparams or {})}


def study_setting(study: optuna.Study, args: argparse.Namespace, key: str) -> Any:
    """
    A setting the study was started with (``SETTINGS``), else this run's (a study not started yet, or one started
    before the setting was recorded: what it used then).
    """
    if key in study.user_attrs:
        return study.user_attrs[key]
    if "command" in study.user_attrs and key in SETTINGS_BEFORE_RECORDED:
        return SETTINGS_BEFORE_RECORDED[key]
    return getattr(args, key)


def _status(study: optuna.Study, start: float) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(trial.state == state for trial in trials) for state in TrialState}
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = max(complete, key=lambda trial: trial.value, default=None)  # type: ignore[arg-type, return-value]
    best_text = f" | best {best.value:.2f} (trial {best.number})" if best is not None else ""
    return (
        f"[tune] {len(trials)} trials: {counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.RUNNING]} running, {counts[TrialState.WAITING]} waiting, {counts[TrialState.FAIL]} failed"
        f"{best_text} | {time.strftime('%H:%M:%S', time.gmtime(time.time() - start))}"
    )


def _worker_entry(args: argparse.Namespace, cap: int, worker_idx: int, sampler_seed: int) -> None:
    from grpo_zoo.tuning.worker import run_worker

    try:
        run_worker(args, args.storage, cap, worker_idx, sampler_seed)
    except KeyboardInterrupt:
        sys.exit(130)


def run_study(args: argparse.Namespace) -> optuna.Study:
    """
    Create or resume the study, run ``args.workers`` worker processes until the cap, print progress.

    :return: the study
    """
    storage = make_storage(args.storage, args.heartbeat_interval, args.grace_period, args.max_retry)
    with storage_errors(args.storage):
        study = optuna.create_study(storage=storage, study_name=args.study_name, direction="maximize", load_if_exists=True)
    settings = {key: getattr(args, key) for key in SETTINGS}
    if "command" not in study.user_attrs:
        study.set_user_attr("command", shlex.join(["python", "-m", "grpo_zoo.tune", *sys.argv[1:]]))
        for key, value in settings.items():
            study.set_user_attr(key, value)
        # The YAML entry the trials start from (the file may change before the report is written)
        study.set_user_attr("hyperparams", base_hyperparams(args))
    else:
        changed = {key: value for key, value in settings.items() if study_setting(study, args, key) != value}
        if changed:
            print(f"[tune] warning: resuming {args.study_name!r} with other settings than it started with: {changed}")
        print(f"[tune] resuming study {args.study_name!r} ({len(study.trials)} trials so far)")

    # Trials left behind by dead workers of this machine or by Ctrl-C: re-run them first
    for trial in [*fail_dead_local_trials(study, args.max_retry), *retry_interrupted_trials(study, args.max_retry)]:
        print(f"[tune] trial {trial.number} was interrupted: queued again")

    n_counted = count_trials(study)
    # As rl_zoo3: with --max-total-trials the cap is on the whole study (on every machine), else n_trials more
    cap = args.max_total_trials if args.max_total_trials is not None else n_counted + args.n_trials
    n_waiting = count_trials(study, (TrialState.WAITING,))
    if n_counted >= cap and n_waiting == 0:
        print(f"[tune] {n_counted} trials already counted (cap {cap}): nothing to run")
        return study

    print(f"[tune] study {args.study_name!r} in {args.storage}: {args.workers} workers, up to {cap} trials")
    failed = _run_workers(args, study, cap, n_counted)
    if failed:
        args.worker_errors = failed
    return study


def _run_workers(args: argparse.Namespace, study: optuna.Study, cap: int, n_counted: int) -> list[str]:
    """
    Start the worker processes, print progress, replace a worker killed mid-trial, stop on Ctrl-C.

    :return: the workers that ended with an error
    """
    failed: list[str] = []
    context = mp.get_context("spawn")
    start = time.time()
    n_spawned = 0

    def spawn() -> Any:
        nonlocal n_spawned
        # Distinct sampler seeds per worker and per run, so a resumed random/TPE study does not replay itself
        process = context.Process(
            target=_worker_entry,
            args=(args, cap, n_spawned, args.seed * 10_007 + 101 * n_spawned + n_counted),
            name=f"grpo-tune-{n_spawned}",
        )
        process.start()
        n_spawned += 1
        return process

    def unfinished() -> bool:
        return count_trials(study) < cap or count_trials(study, (TrialState.WAITING,)) > 0

    workers = [spawn() for _ in range(args.workers)]
    last_status = ""
    try:
        while workers:
            time.sleep(args.progress_interval if last_status else 0.5)
            for process in [process for process in workers if not process.is_alive()]:
                workers.remove(process)
                if process.exitcode is None or process.exitcode >= 0:
                    # Done (0), or gave up (1: trials failed in a row, or a bad configuration): not replaced
                    if process.exitcode:
                        failed.append(f"{process.name} (exit code {process.exitcode})")
                    continue
                # Killed by a signal, maybe mid-trial: recover its trial, replace it
                for trial in fail_dead_local_trials(study, args.max_retry):
                    print(f"[tune] worker {process.name} died ({process.exitcode}): trial {trial.number} queued again")
                if n_spawned < 3 * args.workers and unfinished():
                    workers.append(spawn())
            status = _status(study, start)
            if status.split(" | ")[0] != last_status.split(" | ")[0]:
                print(status, flush=True)
            last_status = status
    except KeyboardInterrupt:
        print("[tune] interrupted: waiting for the workers to stop (run the same command to resume)")
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
        fail_dead_local_trials(study, args.max_retry)
    print(_status(study, start), flush=True)
    return failed


def report(args: argparse.Namespace, study: optuna.Study) -> dict[str, Any]:
    """Write the CSV, the best YAML entry, the summary and the plots; print the best trial."""
    from grpo_zoo.tuning.report import write_report

    # The settings the study was started with (a report-only run may not repeat them)
    settings = {key: study_setting(study, args, key) for key in SETTINGS if key != "env"}
    budget = "the YAML n_timesteps" if settings["n_timesteps"] in (None, -1) else settings["n_timesteps"]
    comment = (
        f"{settings['n_seeds']} seed(s) x {budget} simulator steps (real + probe steps) per trial, score = "
        f"{SEED_STATISTIC_WORDS[settings['seed_statistic']]} over seeds of the {settings['statistic']} of "
        f"{settings['n_evaluations']} evaluations, storage {storage_label(args.storage)}"
    )
    base = study.user_attrs.get("hyperparams") or base_hyperparams(args)
    summary = write_report(study, args.output_dir, args.env, base, comment, plots=not args.no_plots, settings=settings)
    print(f"Training CPU seconds of the study: {summary['cpu_seconds']:.1f} ({summary['sim_steps']} simulator steps)")
    if "best_value" in summary:
        cost = ""
        if summary.get("best_cpu_seconds") is not None:
            cost = (
                f", {summary['best_sim_steps']} simulator steps ({summary['best_real_steps']} real), "
                f"{summary['best_cpu_seconds']:.1f} CPU s"
            )
        seeds = f"{settings['seed_statistic']} of seeds {summary['best_seed_scores']}"
        print(f"Best trial {summary['best_trial']}: {summary['best_value']:.2f} ({seeds}){cost}")
        top = sorted(summary["importances"].items(), key=lambda item: -item[1])
        print(f"Importances ({summary['importance_evaluator']}): " + ", ".join(f"{k}={v:.3f}" for k, v in top))
    for path in summary["files"]:
        print(f"Wrote {path}")
    return summary


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if args.n_trials > 0 or args.max_total_trials:
            study = run_study(args)
        else:
            storage = make_storage(args.storage, None)
            with storage_errors(args.storage):
                study = optuna.load_study(study_name=args.study_name, storage=storage)
    except StorageError as error:
        # One line naming the storage and the fix, not a traceback through SQLAlchemy
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    report(args, study)
    if getattr(args, "worker_errors", None):
        print(f"[tune] workers ended with an error: {', '.join(args.worker_errors)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
