"""
GRPO vs the zoo's tuned PPO, same evaluation protocol::

    python -m grpo_zoo.benchmark --envs CartPole-v1 Acrobot-v1 --seeds 5 --algos grpo grpo-episode ppo

Runs are interleaved (seed 0: A B C, seed 1: A B C, ...) one after the other, each in a fresh single-threaded
subprocess; the output folder gets ``results.md`` (tables), ``<env>.png`` (learning curves), ``curves.csv``,
``summary.json``, ``meta.json`` and ``runs/*.json`` (one per run, re-plot with ``--replot``).
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from grpo_zoo.benchmarking import report
from grpo_zoo.benchmarking.config import DEFAULT_EVAL_FREQ, DEFAULT_THRESHOLDS, make_variant
from grpo_zoo.benchmarking.run import RunSpec

PACKAGES = ("torch", "stable_baselines3", "sb3_contrib", "rl_zoo3", "gymnasium", "numpy")


def parse_per_env(tokens: list[str] | None, envs: list[str], option: str) -> dict[str, float]:
    """``["1e5"]`` (every env) or ``["CartPole-v1=1e5", ...]`` -> {env: value}."""
    values: dict[str, float] = {}
    for token in tokens or []:
        env_id, sep, value = token.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"`{option}` expects NUMBER or ENV=NUMBER, got {token!r}") from None
        for target in [env_id] if sep else envs:
            values[target] = number
    return values


def parse_algo_budgets(tokens: list[str] | None) -> dict[tuple[str, str | None], float]:
    """``["grpo-episode=1e5", "ppo:CartPole-v1=5e4"]`` -> {(algo, env or None): budget}."""
    budgets: dict[tuple[str, str | None], float] = {}
    for token in tokens or []:
        target, sep, value = token.rpartition("=")
        algo, _, env_id = target.partition(":")
        try:
            budgets[(algo, env_id or None)] = float(value)
        except ValueError:
            raise ValueError(f"`--budget` expects ALGO=N or ALGO:ENV=N, got {token!r}") from None
        if not sep or not algo:
            raise ValueError(f"`--budget` expects ALGO=N or ALGO:ENV=N, got {token!r}")
    return budgets


def parse_overrides(tokens: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["grpo-episode.n_steps=256"]`` -> {"grpo-episode": {"n_steps": 256}} (values parsed as YAML)."""
    overrides: dict[str, dict[str, Any]] = {}
    for token in tokens or []:
        target, sep, value = token.partition("=")
        algo, dot, key = target.partition(".")
        if not (sep and dot):
            raise ValueError(f"`--set` expects ALGO.KEY=VALUE, got {token!r}")
        overrides.setdefault(algo, {})[key] = yaml.safe_load(value)
    return overrides


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1"])
    parser.add_argument(
        "--algos", nargs="+", default=["grpo", "ppo"], help="grpo, grpo-episode, or any rl-zoo3 algorithm (its own yml)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds per (env, algo)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every real-step budget")
    parser.add_argument(
        "--grpo-budget", nargs="+", metavar="[ENV=]N", help="real steps for grpo variants (default: issue 4's targets)"
    )
    parser.add_argument(
        "--ppo-budget", nargs="+", metavar="[ENV=]N", help="real steps for the other algorithms (default: yml n_timesteps)"
    )
    parser.add_argument(
        "--budget", nargs="+", metavar="ALGO[:ENV]=N", help="real steps for one row (wins over --grpo/ppo-budget)"
    )
    parser.add_argument("--eval-freq", nargs="+", metavar="[ENV=]K", help="evaluate every K real steps")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--eval-seed", type=int, default=10_000, help="seed of the (fixed) evaluation episodes")
    parser.add_argument("--threshold", nargs="+", metavar="ENV=VALUE", help="score for time-to-threshold")
    parser.add_argument("--set", nargs="+", metavar="ALGO.KEY=VALUE", help="override a yml hyperparameter")
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results/<date>_<envs>)")
    parser.add_argument("--resume", action="store_true", help="keep runs already in OUT/runs/")
    parser.add_argument("--replot", action="store_true", help="only rebuild tables and plots from OUT/runs/")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[RunSpec]:
    """Every run, interleaved over algorithms within each seed."""
    overrides = parse_overrides(args.set)
    grpo_budgets = parse_per_env(args.grpo_budget, args.envs, "--grpo-budget")
    other_budgets = parse_per_env(args.ppo_budget, args.envs, "--ppo-budget")
    algo_budgets = parse_algo_budgets(args.budget)
    eval_freqs = parse_per_env(args.eval_freq, args.envs, "--eval-freq")
    specs = []
    for env_id in args.envs:
        variants = [make_variant(algo, overrides.get(algo)) for algo in args.algos]
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for variant in variants:
                budgets = grpo_budgets if variant.zoo_algo == "grpo" else other_budgets
                budget = budgets.get(env_id, variant.default_budget(env_id))
                budget = algo_budgets.get((variant.name, env_id), algo_budgets.get((variant.name, None), budget))
                budget = int(budget * args.budget_scale)
                eval_freq = int(eval_freqs.get(env_id, DEFAULT_EVAL_FREQ.get(env_id, max(1, budget // 30))))
                specs.append(
                    RunSpec(
                        env_id, variant.name, seed, budget, eval_freq, args.eval_episodes, args.eval_seed, variant.overrides
                    )
                )
    return specs


def run_name(spec: RunSpec) -> str:
    return f"{spec.env_id}_{spec.algo}_seed{spec.seed}"


def run_in_subprocess(spec: RunSpec, out: Path) -> dict[str, Any]:
    """One run in a fresh single-threaded interpreter; its stdout/stderr go to ``OUT/logs/<run>.log``."""
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    spec_path, result_path = out / "runs" / f"{run_name(spec)}.spec.json", out / "runs" / f"{run_name(spec)}.json"
    spec_path.write_text(json.dumps(asdict(spec), indent=1))
    package_root = str(Path(__file__).resolve().parent.parent.parent)  # the grpo_zoo this process imported
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    with open(out / "logs" / f"{run_name(spec)}.log", "w") as log:
        process = subprocess.run(
            [sys.executable, "-m", "grpo_zoo.benchmarking.run", str(spec_path), str(result_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    spec_path.unlink()
    if process.returncode != 0:
        tail = (out / "logs" / f"{run_name(spec)}.log").read_text().strip().splitlines()[-1:]
        result = {"spec": asdict(spec), "error": f"exit code {process.returncode}: {' '.join(tail)}"}
        result_path.write_text(json.dumps(result, indent=1))
        return result
    return json.loads(result_path.read_text())


def versions() -> dict[str, str]:
    import grpo_zoo

    found = {"python": platform.python_version(), "grpo_zoo": grpo_zoo.__version__}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    repo = Path(grpo_zoo.__file__).resolve().parent.parent
    git = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0:
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], capture_output=True)
        found["git_commit"] = git.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    return found


def write_outputs(out: Path, args: argparse.Namespace, results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Tables, plots, CSV and JSON for every env in ``results``; returns the markdown."""
    thresholds = {**DEFAULT_THRESHOLDS, **parse_per_env(args.threshold, args.envs, "--threshold")}
    report.write_curves_csv(results, out / "curves.csv")
    envs = list(dict.fromkeys(result["spec"]["env_id"] for result in results))
    algos = list(dict.fromkeys(result["spec"]["algo"] for result in results))
    lines = [
        "# GRPO benchmark",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Date: {meta['date']} · machine: {meta['machine']} · versions: "
        + ", ".join(f"{name} {version}" for name, version in meta["versions"].items()),
        "",
        f"Protocol: deterministic evaluation of {args.eval_episodes} episodes with fixed seeds (from {args.eval_seed}) "
        "every k real steps, scored with the env's true reward; times exclude evaluation; runs interleaved per seed, "
        "each in a fresh single-threaded process. Metrics are mean ± std over seeds; (k/n) = only k of n seeds reached "
        "the threshold. 'hold' = at or above the threshold at every later evaluation.",
    ]
    summaries: dict[str, dict[str, Any]] = {}
    for env_id in envs:
        threshold = thresholds.get(env_id, float("inf"))
        env_results = {
            algo: [r for r in results if r["spec"]["env_id"] == env_id and r["spec"]["algo"] == algo] for algo in algos
        }
        env_results = {algo: runs for algo, runs in env_results.items() if runs}
        summaries[env_id] = {algo: report.summarize(runs, threshold) for algo, runs in env_results.items()}
        budgets = ", ".join(f"{algo} {runs[0]['spec']['budget']:,}" for algo, runs in env_results.items())
        eval_freq = next(iter(env_results.values()))[0]["spec"]["eval_freq"]
        lines += [
            "",
            f"## {env_id} (threshold {threshold:g}; eval every {eval_freq:,} real steps; budgets: {budgets})",
            "",
            report.markdown_table(summaries[env_id]),
            "",
            f"![{env_id}]({env_id}.png)",
        ]
        failed = [r for runs in env_results.values() for r in runs if "error" in r]
        lines += [f"- failed: {r['spec']['algo']} seed {r['spec']['seed']}: {r['error']}" for r in failed]
        curves = {algo: [r["curve"] for r in runs if "error" not in r] for algo, runs in env_results.items()}
        report.plot_env(env_id, curves, eval_freq, threshold, out / f"{env_id}.png")
    markdown = "\n".join(lines) + "\n"
    (out / "results.md").write_text(markdown)
    (out / "summary.json").write_text(json.dumps(summaries, indent=1))
    return markdown


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or Path("benchmarks/results") / f"{datetime.date.today():%Y-%m-%d}_{'_'.join(args.envs)}"
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(args)
    meta_path = out / "meta.json"
    if args.replot and meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        meta = {
            "command": shlex.join(["python", "-m", "grpo_zoo.benchmark", *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS=1, torch 1 thread",
            "versions": versions(),
            "runs": [asdict(spec) for spec in specs],
        }
        meta_path.write_text(json.dumps(meta, indent=1))

    results = []
    for i, spec in enumerate(specs, start=1):
        result_path = out / "runs" / f"{run_name(spec)}.json"
        if (args.resume or args.replot) and result_path.exists():
            result = json.loads(result_path.read_text())
            if args.replot or "error" not in result:
                results.append(result)
                continue
        if args.replot:
            continue
        start = time.perf_counter()
        result = run_in_subprocess(spec, out)
        results.append(result)
        status = result.get("error") or "final {:.1f}, {:,} real / {:,} sim steps, {:.0f} s train".format(
            result["curve"][-1]["mean_return"], result["real_steps"], result["sim_steps"], result["train_wall_s"]
        )
        print(f"[{i}/{len(specs)}] {run_name(spec)}: {status} ({time.perf_counter() - start:.0f} s)", flush=True)
        write_outputs(out, args, results, meta)  # partial results survive an interrupted benchmark
    print(write_outputs(out, args, results, meta))
    print(f"Written to {out}")
