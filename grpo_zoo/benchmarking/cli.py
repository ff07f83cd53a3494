"""
GRPO vs the zoo's tuned PPO, PPO on GRPO's reward and that reward's greedy controller, same evaluation protocol::

    python -m grpo_zoo.benchmark --envs CartPole-v1 Acrobot-v1 --seeds 5 \\
        --algos grpo grpo-env grpo-episode ppo ppo-shaped greedy

Runs are interleaved (seed 0: A B C, seed 1: A B C, ...) one after the other, each in a fresh single-threaded
subprocess; the output folder gets ``results.md`` (tables), ``<env>.png`` (learning curves), ``curves.csv``,
``summary.json``, ``meta.json`` and ``runs/*.json`` (one per run, re-plot with ``--replot``). In a folder without
``runs/`` (those committed under benchmarks/results/), ``--replot --out DIR`` renders the tables of ``results.md``
again from ``summary.json``, IQM [95% CI] included.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from grpo_zoo.benchmarking import report
from grpo_zoo.benchmarking.config import DEFAULT_EVAL_FREQ, DEFAULT_THRESHOLDS, GRPO_ROWS, make_variant
from grpo_zoo.benchmarking.references import REFERENCE_DIR, is_reference, load_reference, store_reference
from grpo_zoo.benchmarking.run import RunSpec

PACKAGES = ("torch", "stable_baselines3", "sb3_contrib", "rl_zoo3", "gymnasium", "numpy")


def parse_reward_functions(tokens: list[str] | None, envs: list[str]) -> dict[str, str]:
    """``["reward_fns.x:f"]`` (every env) or ``["CartPole-v1=reward_fns.cartpole:reward", ...]`` -> {env: path}."""
    paths: dict[str, str] = {}
    for token in tokens or []:
        env_id, sep, path = token.rpartition("=")
        for target in [env_id] if sep else envs:
            paths[target] = path
    return paths


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


def parse_algo_budgets(tokens: list[str] | None, option: str = "--budget") -> dict[tuple[str, str | None], float]:
    """``["grpo-episode=1e5", "ppo:CartPole-v1=5e4"]`` -> {(algo, env or None): number}."""
    budgets: dict[tuple[str, str | None], float] = {}
    for token in tokens or []:
        target, sep, value = token.rpartition("=")
        algo, _, env_id = target.partition(":")
        try:
            budgets[(algo, env_id or None)] = float(value)
        except ValueError:
            raise ValueError(f"`{option}` expects ALGO=N or ALGO:ENV=N, got {token!r}") from None
        if not sep or not algo:
            raise ValueError(f"`{option}` expects ALGO=N or ALGO:ENV=N, got {token!r}")
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
        "--algos",
        nargs="+",
        default=["grpo", "ppo"],
        help="grpo, grpo-env, grpo-episode, ppo-shaped, greedy, or any rl-zoo3 algorithm (its own yml)",
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
    parser.add_argument(
        "--eval-freq", nargs="+", metavar="[ALGO:][ENV=]K", help="evaluate every K real steps (per env, or per row and env)"
    )
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--eval-seed", type=int, default=10_000, help="curve evaluation episode i starts from reset seed EVAL_SEED + i"
    )
    parser.add_argument("--final-episodes", type=int, default=100, help="episodes of the final score")
    parser.add_argument(
        "--final-seed",
        type=int,
        default=1_000_000,
        help="final episode i starts from reset seed FINAL_SEED + i (disjoint from the curve's and training's seeds)",
    )
    parser.add_argument("--threshold", nargs="+", metavar="ENV=VALUE", help="score for time-to-threshold")
    parser.add_argument("--set", nargs="+", metavar="ALGO.KEY=VALUE", help="override a yml hyperparameter")
    parser.add_argument(
        "--reward-function",
        nargs="+",
        metavar="[ENV=]PATH",
        help="the reward function the grpo row scores members by, ppo-shaped trains on and greedy plays "
        "(default: the grpo.yml entry's)",
    )
    parser.add_argument(
        "--grpo-conf",
        metavar="PATH",
        help="the yml file of the grpo rows' entries, e.g. hyperparams/grpo-reward-fns.yml (default: the shipped grpo.yml)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results/<date>_<envs>)")
    parser.add_argument("--resume", action="store_true", help="keep runs already in OUT/runs/")
    parser.add_argument(
        "--reference-dir",
        default=str(REFERENCE_DIR),
        help="where finished runs of other algorithms (the zoo's PPO, ARS, ...) are kept and reused from "
        f"(default {REFERENCE_DIR}); `--reference-dir ''` runs and keeps nothing there",
    )
    parser.add_argument(
        "--kept-references-only",
        action="store_true",
        help="reference rows (the zoo's PPO, ARS, ...) only from --reference-dir: seeds without a kept run are left out",
    )
    parser.add_argument("--replot", action="store_true", help="only rebuild tables and plots from OUT/runs/")
    return parser.parse_args(argv)


def check_final_seeds(args: argparse.Namespace, max_n_envs: int) -> None:
    """
    The final score's reset seeds must be unseen: disjoint from the curve's evaluation seeds and from the seeds the
    zoo resets training envs with (run seed + env index; eval env: run seed).

    :param max_n_envs: the largest ``n_envs`` of the planned runs
    """
    final = range(args.final_seed, args.final_seed + args.final_episodes)
    used = {
        "--eval-seed": range(args.eval_seed, args.eval_seed + args.eval_episodes),
        "training": range(args.first_seed, args.first_seed + args.seeds + max_n_envs),
    }
    for name, seeds in used.items():
        if final.start < seeds.stop and seeds.start < final.stop:
            raise ValueError(
                f"the final episodes' reset seeds {final.start}..{final.stop - 1} (`--final-seed`, `--final-episodes`) "
                f"overlap the {name} seeds {seeds.start}..{seeds.stop - 1}: move `--final-seed`"
            )


def plan(args: argparse.Namespace) -> tuple[list[RunSpec], dict[str, list[str]]]:
    """
    Every run, interleaved over algorithms within each seed. The greedy controller does not learn and is
    deterministic on the final episodes: it runs once per env (with the first seed). Rows that need the grpo
    entry's reward function (``ppo-shaped``, ``greedy``) are skipped for an env whose entry has none.

    :return: the runs, and per env one line for each row it has no run for, saying why
    """
    overrides = parse_overrides(args.set)
    grpo_budgets = parse_per_env(args.grpo_budget, args.envs, "--grpo-budget")
    other_budgets = parse_per_env(args.ppo_budget, args.envs, "--ppo-budget")
    algo_budgets = parse_algo_budgets(args.budget)
    # ENV=K or ALGO:ENV=K (a row whose real steps cost more simulator steps can be evaluated more often)
    row_eval_freqs = parse_algo_budgets([t for t in args.eval_freq or [] if ":" in t.partition("=")[0]], "--eval-freq")
    eval_freqs = parse_per_env([t for t in args.eval_freq or [] if ":" not in t.partition("=")[0]], args.envs, "--eval-freq")
    reward_functions = parse_reward_functions(args.reward_function, args.envs)
    specs: list[RunSpec] = []
    skipped: dict[str, list[str]] = {}
    max_n_envs = 1
    for env_id in args.envs:
        skipped[env_id], rows = [], []
        for algo in args.algos:
            variant = make_variant(algo, overrides.get(algo), reward_functions.get(env_id), args.grpo_conf)
            reason = variant.skip_reason(env_id)
            if reason:
                skipped[env_id].append(f"{algo}: {reason}")
                continue
            budget = 0  # the greedy controller does not learn
            if variant.zoo_algo is not None:
                budgets = grpo_budgets if variant.zoo_algo == "grpo" else other_budgets
                steps = budgets.get(env_id, variant.default_budget(env_id))
                steps = algo_budgets.get((algo, env_id), algo_budgets.get((algo, None), steps))
                budget = int(steps * args.budget_scale)
                max_n_envs = max(max_n_envs, int(variant.hyperparams(env_id).get("n_envs", 1)))
            eval_freq = eval_freqs.get(env_id, DEFAULT_EVAL_FREQ.get(env_id, max(1, budget // 30)))
            eval_freq = int(row_eval_freqs.get((algo, env_id), eval_freq))
            rows.append((variant, budget, eval_freq))
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for variant, budget, eval_freq in rows:
                if variant.zoo_algo is None and seed != args.first_seed:
                    continue
                specs.append(
                    RunSpec(
                        env_id=env_id,
                        algo=variant.name,
                        seed=seed,
                        budget=budget,
                        eval_freq=eval_freq,
                        n_eval_episodes=args.eval_episodes,
                        eval_seed=args.eval_seed,
                        final_episodes=args.final_episodes,
                        final_seed=args.final_seed,
                        overrides=variant.overrides,
                        reward_function=variant.reward_function,
                        grpo_config=None if variant.grpo_config is None else str(variant.grpo_config),
                    )
                )
    check_final_seeds(args, max_n_envs)
    return specs, skipped


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


ROW_DESCRIPTIONS = {
    "grpo": "GRPO, the grpo entry",
    "grpo-env": "the same entry learning from the env reward (reward function dropped; one-step state groups get a "
    "longer `horizon`)",
    "grpo-episode": "the same entry as episode groups (shared-seed resets) with the env reward",
    "ppo": "rl-zoo3's own PPO entry, env reward",
    "ppo-shaped": "rl-zoo3's PPO entry trained on the grpo entry's reward function (a wrapper outside the Monitor: the "
    "learner sees the shaped reward, the Monitor and every evaluation the true one), with VecNormalize `norm_reward` "
    "turned on where the entry does not normalise rewards, as a PPO user would",
    "greedy": "no learning: the grpo entry's reward function as a one-step greedy controller on copies of the simulator",
}


def protocol_text(args: argparse.Namespace) -> list[str]:
    """The protocol of ``results.md``, in plain words."""
    return [
        "## Protocol",
        "",
        "- **Simulator step**: every `env.step` of a simulator: the real env's steps, GRPO's branched probe steps "
        "(`model.num_probe_steps`) and the greedy controller's probe of every candidate action at every step. "
        "Cost is counted in simulator steps and CPU seconds of training (evaluation excluded); real steps "
        "(`model.num_timesteps`) are a secondary figure. PPO's simulator steps are its real steps.",
        f"- **Learning curve**: every k real steps (and before training and at the end) the deterministic policy plays "
        f"{args.eval_episodes} episodes, episode i reset with seed {args.eval_seed} + i, the same at every evaluation, "
        "for every seed and row. 'first' = the first evaluation after training started at or above the threshold "
        "(the evaluation at step 0 does not count); 'hold' = the first evaluation from which every later one stays "
        "at or above it.",
        f"- **Final score**: after training, {args.final_episodes} episodes, episode i reset with seed "
        f"{args.final_seed:_} + i (never used by the curve, nor by the training envs, which the zoo resets with the "
        "run seed + env index), played with deterministic actions (as `rl_zoo3.enjoy`) and, on the same episodes, "
        "with sampled actions. Tables give mean ± std over seeds of each seed's mean over those episodes. The "
        "greedy controller is deterministic and does not learn: it plays the same episodes once.",
        "- **Score**: always the Monitor's episode return, i.e. the env's true reward, never a shaped or "
        "VecNormalize-scaled one; VecNormalize statistics are copied from the training env and frozen first.",
        "- Runs are interleaved per seed, each in a fresh single-threaded process; wall time is noisy on a shared "
        "machine, CPU seconds less so. Metrics are mean ± std over seeds; (k/n) = only k of n seeds reached the "
        "threshold; — = does not apply.",
        report.IQM_PROTOCOL,
    ]


def row_notes(env_results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One line per row: what it is, with the hyperparameters that make it (grpo-env's horizon, ppo-shaped's normalize)."""
    lines = []
    for algo, runs in env_results.items():
        done = [run for run in runs if "error" not in run]
        note = f"- `{algo}`: {ROW_DESCRIPTIONS.get(algo, f'rl-zoo3 {algo} entry, env reward')}"
        hyperparams = done[0]["hyperparams"] if done else {}
        if algo == "grpo-env":
            note += f"; horizon {hyperparams.get('horizon', 1)}"
        if algo == "ppo-shaped":
            note += f"; normalize {hyperparams.get('normalize', False)}"
        if algo == "greedy" and done:
            note += f" ({done[0]['final']['deterministic']['n_candidates']} candidate actions)"
        config = done[0].get("config") if done else None
        if algo in GRPO_ROWS and config:
            note += f" (`{Path(config).name}`)"
        source = done[0].get("entry_key") if done else None
        if source and source != done[0]["spec"]["env_id"]:
            note += f"; its `{source}` entry, applied to {done[0]['spec']['env_id']}"
        lines.append(note + ".")
    return lines


def write_outputs(
    out: Path, args: argparse.Namespace, results: list[dict[str, Any]], meta: dict[str, Any], skipped: dict[str, list[str]]
) -> str:
    """
    Tables, plots, CSV and JSON for every env in ``results``.

    :param skipped: per env, one line for each row it has no run for
    :return: the markdown of ``results.md``
    """
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
        *protocol_text(args),
    ]
    summaries: dict[str, dict[str, Any]] = {}
    for env_id in envs:
        threshold = thresholds.get(env_id, float("inf"))
        env_results = {
            algo: [r for r in results if r["spec"]["env_id"] == env_id and r["spec"]["algo"] == algo] for algo in algos
        }
        env_results = {algo: runs for algo, runs in env_results.items() if runs}
        summaries[env_id] = {algo: report.summarize(runs, threshold) for algo, runs in env_results.items()}
        budgets = ", ".join(
            f"{algo} {runs[0]['spec']['budget']:,}" for algo, runs in env_results.items() if runs[0]["spec"]["budget"]
        )
        eval_freqs = {algo: runs[0]["spec"]["eval_freq"] for algo, runs in env_results.items()}
        if len(set(eval_freqs.values())) == 1:
            every = f"eval every {next(iter(eval_freqs.values())):,} real steps"
        else:
            every = "eval every " + ", ".join(f"{algo} {freq:,}" for algo, freq in eval_freqs.items()) + " real steps"
        lines += [
            "",
            f"## {env_id} (threshold {threshold:g}; {every}; real-step budgets: {budgets})",
            "",
            *row_notes(env_results),
            *[f"- no {line}." for line in skipped.get(env_id, [])],
            "",
            report.env_tables(summaries[env_id]),
            "",
            f"![{env_id}]({env_id}.png)",
        ]
        failed = [r for runs in env_results.values() for r in runs if "error" in r]
        lines += [f"- failed: {r['spec']['algo']} seed {r['spec']['seed']}: {r['error']}" for r in failed]
        curves = {algo: [r["curve"] for r in runs if "error" not in r and r["curve"]] for algo, runs in env_results.items()}
        levels = {
            algo: statistics.fmean(summary["final_deterministic"])
            for algo, summary in summaries[env_id].items()
            if not curves[algo] and summary["final_deterministic"]
        }
        report.plot_env(env_id, curves, eval_freqs, threshold, out / f"{env_id}.png", levels)
    markdown = "\n".join(lines) + "\n"
    (out / "results.md").write_text(markdown)
    (out / "summary.json").write_text(json.dumps(summaries, indent=1))
    return markdown


def replot_from_summary(out: Path) -> str:
    """
    ``--replot`` of a folder without ``runs/`` (a committed result): every table of ``results.md`` comes from
    ``summary.json``, so they are rendered again from it, IQM included, and ``summary.json`` gets its ``"iqm"``
    entries. The text around the tables (command, protocol, row notes) and the plots stay as they were.

    :param out: the benchmark's output folder
    :return: the markdown of ``results.md``
    """
    summary_path, results_path = out / "summary.json", out / "results.md"
    if not (summary_path.is_file() and results_path.is_file()):
        raise SystemExit(f"error: --replot needs {out / 'runs'}/*.json, or {summary_path} and {results_path}")
    summaries = json.loads(summary_path.read_text())
    markdown = report.rerender_tables(results_path.read_text(), summaries)
    results_path.write_text(markdown)
    summary_path.write_text(json.dumps(summaries, indent=1))
    return markdown


def status_line(result: dict[str, Any]) -> str:
    """One line on a finished run, for the console."""
    if "error" in result:
        return result["error"]
    final = result["final"]["deterministic"]
    text = f"final {final['mean']:.1f} over {len(final['returns'])} ep. (det.)"
    if result["curve"]:
        text += f", last eval {result['curve'][-1]['mean_return']:.1f}"
        text += f", {result['real_steps']:,} real / {result['sim_steps']:,} sim steps, {result['train_cpu_s']:.0f} CPU s train"
    else:
        text += f", {result['sim_per_real']:.0f} sim steps per real step, {final['cpu_s_per_episode']:.2f} CPU s/episode"
    return text


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or Path("benchmarks/results") / f"{datetime.date.today():%Y-%m-%d}_{'_'.join(args.envs)}"
    if args.replot and not any((out / "runs").glob("*.json")):
        print(replot_from_summary(out))
        return
    out.mkdir(parents=True, exist_ok=True)
    specs, skipped = plan(args)
    meta_path = out / "meta.json"
    if args.replot and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        skipped = meta.get("skipped", skipped)
    else:
        meta = {
            "command": shlex.join(["python", "-m", "grpo_zoo.benchmark", *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS=1, torch 1 thread",
            "versions": versions(),
            "runs": [asdict(spec) for spec in specs],
            "skipped": skipped,
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
        references = Path(args.reference_dir) if args.reference_dir and is_reference(spec) else None
        kept = load_reference(references, spec, meta["versions"]) if references else None
        if kept is not None:
            result_path.parent.mkdir(parents=True, exist_ok=True)
            result_path.write_text(json.dumps(kept, indent=1))
            results.append(kept)
            print(f"[{i}/{len(specs)}] {run_name(spec)}: {status_line(kept)} (kept in {kept['reference']})", flush=True)
            continue
        if references and args.kept_references_only:
            print(f"[{i}/{len(specs)}] {run_name(spec)}: left out (no kept reference run)", flush=True)
            continue
        start = time.perf_counter()
        result = run_in_subprocess(spec, out)
        if references:
            store_reference(references, spec, meta["versions"], result)
        results.append(result)
        print(f"[{i}/{len(specs)}] {run_name(spec)}: {status_line(result)} ({time.perf_counter() - start:.0f} s)", flush=True)
        write_outputs(out, args, results, meta, skipped)  # partial results survive an interrupted benchmark
    print(write_outputs(out, args, results, meta, skipped))
    print(f"Written to {out}")
