"""Turn per-run results into the benchmark's outputs: threshold metrics, markdown tables, CSV curves, PNG plots."""

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

CURVE_FIELDS = ("real_steps", "sim_steps", "wall_s", "cpu_s", "mean_return", "std_return", "mean_length")


def threshold_metrics(curve: list[dict[str, float]], threshold: float) -> dict[str, dict[str, float] | None]:
    """
    When a run's evaluation first reaches ``threshold`` and from when it holds (>= threshold at every later
    evaluation). The evaluation before any training (real_steps == 0) does not count: a lucky initial
    policy has not learned anything.

    :param curve: evaluation rows in order, as written by ``EvalRecorder``
    :param threshold: the score to reach
    :return: ``{"first": row | None, "hold": row | None}``
    """
    rows = [row for row in curve if row["real_steps"] > 0]
    first = next((row for row in rows if row["mean_return"] >= threshold), None)
    hold = None
    for row in reversed(rows):
        if row["mean_return"] < threshold:
            break
        hold = row
    return {"first": first, "hold": hold}


def summarize(results: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """
    Aggregate the seeds of one (env, algorithm).

    :param results: run results (``run.run`` output; a failed run has ``"error"``)
    :param threshold: the env's threshold
    :return: per-metric lists over seeds (``None`` where a seed never reached the threshold)
    """
    done = [result for result in results if "error" not in result]
    summary: dict[str, Any] = {"n_runs": len(results), "n_failed": len(results) - len(done), "threshold": threshold}
    summary["final"] = [result["curve"][-1]["mean_return"] for result in done]
    for key in ("real_steps", "sim_steps", "train_wall_s", "train_cpu_s", "peak_rss_mb"):
        summary[key] = [result[key] for result in done]
    summary["real_steps_per_s"] = [result["real_steps"] / result["train_wall_s"] for result in done]
    summary["sim_steps_per_s"] = [result["sim_steps"] / result["train_wall_s"] for result in done]
    for when in ("first", "hold"):
        rows = [threshold_metrics(result["curve"], threshold)[when] for result in done]
        for key in ("real_steps", "sim_steps", "wall_s", "cpu_s"):
            summary[f"{when}_{key}"] = [None if row is None else row[key] for row in rows]
    return summary


def _mean_std(values: list[float | None], fmt: str = ",.0f") -> str:
    """``mean ± std`` of the non-missing values, with ``(k/n)`` when some are missing."""
    present = [value for value in values if value is not None]
    if not present:
        return "—" if not values else f"never (0/{len(values)})"
    text = format(statistics.fmean(present), fmt)
    if len(present) > 1:
        text += " ± " + format(statistics.pstdev(present), fmt)
    if len(present) < len(values):
        text += f" ({len(present)}/{len(values)})"
    return text


TABLE_COLUMNS = (
    ("algo", None, None),
    ("final return", "final", ".1f"),
    ("real steps to first ≥ thr", "first_real_steps", ",.0f"),
    ("sim steps to first", "first_sim_steps", ",.0f"),
    ("wall s to first", "first_wall_s", ",.1f"),
    ("CPU s to first", "first_cpu_s", ",.1f"),
    ("real steps to hold", "hold_real_steps", ",.0f"),
    ("wall s to hold", "hold_wall_s", ",.1f"),
    ("real steps", "real_steps", ",.0f"),
    ("sim steps (incl. probes)", "sim_steps", ",.0f"),
    ("real steps/s", "real_steps_per_s", ",.0f"),
    ("sim steps/s", "sim_steps_per_s", ",.0f"),
    ("train wall s", "train_wall_s", ",.1f"),
    ("peak RSS MB", "peak_rss_mb", ",.0f"),
)


def markdown_table(summaries: dict[str, dict[str, Any]]) -> str:
    """:param summaries: algo -> ``summarize`` output, for one env"""
    lines = ["| " + " | ".join(name for name, _, _ in TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for algo, summary in summaries.items():
        cells = [f"{algo} ({summary['n_runs'] - summary['n_failed']} seeds)"]
        if summary["n_failed"]:
            cells[0] += f", {summary['n_failed']} failed"
        cells += [_mean_std(summary[key], fmt) for _, key, fmt in TABLE_COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_curves_csv(results: list[dict[str, Any]], path: Path) -> None:
    """One row per (env, algo, seed, evaluation): enough to re-plot anything."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("env", "algo", "seed", *CURVE_FIELDS))
        for result in results:
            if "error" in result:
                continue
            spec = result["spec"]
            for row in result["curve"]:
                writer.writerow((spec["env_id"], spec["algo"], spec["seed"], *(row[key] for key in CURVE_FIELDS)))


def _band(curves: list[list[dict[str, float]]], eval_freq: int):
    """Mean and std of return (and mean wall time) over seeds, on the nominal grid 0, k, 2k... of real steps."""
    by_point: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for curve in curves:
        for row in curve:
            # Evaluations fire at the first step >= i*k (n_envs granularity): bin them to i*k; the final one is exact.
            point = math.floor(row["real_steps"] / eval_freq) * eval_freq if row is not curve[-1] else row["real_steps"]
            by_point[point].append((row["mean_return"], row["wall_s"]))
    # Keep points every seed reached (a budget cut by rounding leaves a ragged end).
    points = sorted(point for point, values in by_point.items() if len(values) == len(curves))
    mean = [statistics.fmean(v for v, _ in by_point[p]) for p in points]
    std = [statistics.pstdev([v for v, _ in by_point[p]]) for p in points]
    wall = [statistics.fmean(w for _, w in by_point[p]) for p in points]
    return points, mean, std, wall


def plot_env(
    env_id: str, curves: dict[str, list[list[dict[str, float]]]], eval_freq: int, threshold: float, path: Path
) -> None:
    """
    Learning curves of every algorithm on one env: mean ± std over seeds, against real steps and train wall time.

    :param curves: algo -> one curve per seed
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for algo, seed_curves in curves.items():
        if not seed_curves:
            continue
        points, mean, std, wall = _band(seed_curves, eval_freq)
        mean_, std_ = np.array(mean), np.array(std)
        label = f"{algo} ({len(seed_curves)} seeds)"
        for ax, x in zip(axes, (points, wall), strict=True):
            (line,) = ax.plot(x, mean_, label=label)
            ax.fill_between(x, mean_ - std_, mean_ + std_, color=line.get_color(), alpha=0.2)
    for ax, xlabel in zip(axes, ("real env steps", "train wall time [s] (evaluation excluded)"), strict=True):
        ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("deterministic eval return (true reward)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{env_id}: mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
