"""Turn per-run results into the benchmark's outputs: threshold metrics, markdown tables, CSV curves, PNG plots."""

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grpo_zoo.benchmarking import stats

CURVE_FIELDS = ("real_steps", "sim_steps", "wall_s", "cpu_s", "mean_return", "std_return", "mean_length")


def threshold_metrics(curve: list[dict[str, float]], threshold: float) -> dict[str, dict[str, float] | None]:
    """
    When a run's evaluation first reaches ``threshold`` and from when it holds (>= threshold at every later
    evaluation). Evaluations before the first policy update do not count (the one at step 0, and any made during
    the first rollout): a lucky initial policy has not learned anything.

    :param curve: evaluation rows in order, as written by ``EvalRecorder``
    :param threshold: the score to reach
    :return: ``{"first": row | None, "hold": row | None}``
    """
    # Rows of older runs have no "updates": then only the evaluation at step 0 is left out
    rows = [row for row in curve if row["real_steps"] > 0 and row.get("updates", 1) > 0]
    first = next((row for row in rows if row["mean_return"] >= threshold), None)
    hold = None
    for row in reversed(rows):
        if row["mean_return"] < threshold:
            break
        hold = row
    return {"first": first, "hold": hold}


def _final(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The run's final score with deterministic or stochastic actions (None: not applicable, or an older run)."""
    return (result.get("final") or {}).get(name)


def summarize(results: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """
    Aggregate the seeds of one (env, algorithm). A metric that does not apply to a run (the greedy controller
    has no curve and no stochastic policy) leaves it out of that metric's list; a threshold never reached is None.

    :param results: run results (``run.run`` output; a failed run has ``"error"``)
    :param threshold: the env's threshold
    :return: per-metric lists over seeds
    """
    done = [result for result in results if "error" not in result]
    learners = [result for result in done if result["curve"]]
    summary: dict[str, Any] = {"n_runs": len(results), "n_failed": len(results) - len(done), "threshold": threshold}
    for name in ("deterministic", "stochastic"):
        finals = [final for final in (_final(result, name) for result in done) if final is not None]
        summary[f"final_{name}"] = [final["mean"] for final in finals]
        summary[f"final_{name}_cpu_s_per_episode"] = [final["cpu_s_per_episode"] for final in finals]
        if name == "deterministic":
            summary["final_episodes"] = sorted({len(final["returns"]) for final in finals})
    summary["last_eval"] = [result["curve"][-1]["mean_return"] for result in learners]
    for key in ("real_steps", "sim_steps", "train_wall_s", "train_cpu_s"):
        summary[key] = [result[key] for result in learners]
    summary["sim_steps_per_cpu_s"] = [result["sim_steps"] / result["train_cpu_s"] for result in learners]
    summary["sim_per_real"] = [
        result.get("sim_per_real", result["sim_steps"] / max(1, result["real_steps"])) for result in done
    ]
    summary["peak_rss_mb"] = [result["peak_rss_mb"] for result in done]
    for when in ("first", "hold"):
        rows = [threshold_metrics(result["curve"], threshold)[when] for result in learners]
        for key in ("real_steps", "sim_steps", "wall_s", "cpu_s"):
            summary[f"{when}_{key}"] = [None if row is None else row[key] for row in rows]
    return summary


def _mean_std(values: list[float | None], fmt: str = ",.0f") -> str:
    """``mean ± std`` of the non-missing values, with ``(k/n)`` when some are missing, ``—`` when not applicable."""
    present = [value for value in values if value is not None]
    if not present:
        return "—" if not values else f"never (0/{len(values)})"
    text = format(statistics.fmean(present), fmt)
    if len(present) > 1:
        text += " ± " + format(statistics.pstdev(present), fmt)
    if len(present) < len(values):
        text += f" ({len(present)}/{len(values)})"
    return text


# (column, summary key, format): what a result costs, in simulator steps (probes included) and CPU seconds.
SCORE_COLUMNS = (
    ("final ({n} ep., det.)", "final_deterministic", ".1f"),
    ("final (stoch.)", "final_stochastic", ".1f"),
    ("last curve eval", "last_eval", ".1f"),
    ("sim steps to first ≥ thr", "first_sim_steps", ",.0f"),
    ("CPU s to first", "first_cpu_s", ",.1f"),
    ("sim steps to hold", "hold_sim_steps", ",.0f"),
    ("CPU s to hold", "hold_cpu_s", ",.1f"),
    ("real steps to first", "first_real_steps", ",.0f"),
    ("real steps to hold", "hold_real_steps", ",.0f"),
)
COST_COLUMNS = (
    ("sim steps / real step", "sim_per_real", ",.1f"),
    ("train real steps", "real_steps", ",.0f"),
    ("train sim steps", "sim_steps", ",.0f"),
    ("train CPU s", "train_cpu_s", ",.1f"),
    ("train wall s", "train_wall_s", ",.1f"),
    ("train sim steps / CPU s", "sim_steps_per_cpu_s", ",.0f"),
    ("CPU s / final episode (det.)", "final_deterministic_cpu_s_per_episode", ",.3f"),
    ("peak RSS MB", "peak_rss_mb", ",.0f"),
)


def _table(summaries: dict[str, dict[str, Any]], headers: list[str], cells: Callable[[str, dict[str, Any]], list[str]]) -> str:
    """
    A markdown table with one row per algo; ``{n}`` in a header is the number of final episodes.

    :param cells: (algo, summary) -> the row's cells after its label
    """
    n_final = sorted({n for summary in summaries.values() for n in summary.get("final_episodes", [])})
    headers = [header.format(n="/".join(map(str, n_final)) or "?") for header in headers]
    lines = ["| algo | " + " | ".join(headers) + " |", "|" + "---|" * (len(headers) + 1)]
    for algo, summary in summaries.items():
        n_done = summary["n_runs"] - summary["n_failed"]
        label = f"{algo} ({n_done} seed{'s' if n_done != 1 else ''})"
        if summary["n_failed"]:
            label += f", {summary['n_failed']} failed"
        lines.append("| " + " | ".join([label, *cells(algo, summary)]) + " |")
    return "\n".join(lines)


def markdown_table(summaries: dict[str, dict[str, Any]], columns: tuple[tuple[str, str, str], ...] = SCORE_COLUMNS) -> str:
    """
    :param summaries: algo -> ``summarize`` output, for one env
    :param columns: (header, summary key, number format); ``{n}`` in a header is the number of final episodes
    """
    return _table(
        summaries,
        [header for header, _, _ in columns],
        lambda _, summary: [_mean_std(summary[key], fmt) for _, key, fmt in columns],
    )


# (column, summary key, format, higher is better): the metrics a claim rests on, as IQM [95% CI]
IQM_COLUMNS = (
    ("final ({n} ep., det.)", "final_deterministic", ".1f", True),
    ("sim steps to first ≥ thr", "first_sim_steps", ",.0f", False),
    ("CPU s to first", "first_cpu_s", ",.1f", False),
)
_IQM_BULLET = "- **IQM [95% CI]**"
IQM_PROTOCOL = (
    f"{_IQM_BULLET}: beside mean ± std, the interquartile mean over seeds (the mean of the middle half) with a "
    f"95% stratified-bootstrap interval, rliable's protocol ({stats.N_RESAMPLES:,} resamples, seed 0, "
    "`grpo_zoo/benchmarking/stats.py`). A seed that never reached the threshold counts as slower than every seed "
    "that did. 'ahead of X': this row's interval lies entirely on the better side of X's (a higher score, fewer "
    "steps or seconds); overlapping intervals separate nothing, and one seed has no interval."
)


def intervals(summaries: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """
    IQM and 95% interval over seeds of each ``IQM_COLUMNS`` metric, and the rows each one is ahead of (intervals
    apart, on the better side). A threshold never reached (None) counts as ``inf``.

    :param summaries: algo -> ``summarize`` output, for one env
    :return: algo -> summary key -> ``{"iqm", "ci": [low, high], "n", "ahead_of": [algo, ...]}`` (NaN: no value or
        no interval, ``inf``: never reached)
    """
    found = {
        algo: {
            key: stats.iqm_interval([math.inf if value is None else value for value in summary.get(key, [])])
            for _, key, _, _ in IQM_COLUMNS
        }
        for algo, summary in summaries.items()
    }
    return {
        algo: {
            key: {
                "iqm": interval.iqm,
                "ci": list(interval.ci),
                "n": interval.n,
                "ahead_of": [
                    other for other in found if other != algo and stats.ahead(interval.ci, found[other][key].ci, higher)
                ],
            }
            for (_, key, _, higher), interval in zip(IQM_COLUMNS, by_key.values(), strict=True)
        }
        for algo, by_key in found.items()
    }


def _number(value: float, fmt: str) -> str:
    return "∞" if value == math.inf else format(value, fmt)


def _iqm_cell(values: list[float | None], entry: dict[str, Any], fmt: str) -> str:
    """``IQM [low, high]``, with ``(k/n)`` when only k of n seeds got there and the rows it is ahead of."""
    if not values:
        return "—"
    reached = sum(value is not None for value in values)
    if not reached:
        return f"never (0/{len(values)})"
    if entry["n"] == 1:
        return f"{_number(entry['iqm'], fmt)} (1 seed: no interval)"
    low, high = entry["ci"]
    text = f"{_number(entry['iqm'], fmt)} [{_number(low, fmt)}, {_number(high, fmt)}]"
    if reached < len(values):
        text += f" ({reached}/{len(values)})"
    if entry["ahead_of"]:
        text += " · ahead of " + ", ".join(entry["ahead_of"])
    return text


def iqm_table(summaries: dict[str, dict[str, Any]]) -> str:
    """
    :param summaries: algo -> ``summarize`` output with its ``"iqm"`` entry (:func:`intervals`), for one env
    """
    return _table(
        summaries,
        [f"{header} IQM [95% CI]" for header, _, _, _ in IQM_COLUMNS],
        lambda _, summary: [_iqm_cell(summary.get(key, []), summary["iqm"][key], fmt) for _, key, fmt, _ in IQM_COLUMNS],
    )


def env_tables(summaries: dict[str, dict[str, Any]]) -> str:
    """
    The tables of one env: scores (mean ± std), the same scores as IQM [95% CI], costs. Adds each row's
    :func:`intervals` to its summary as ``"iqm"``.

    :param summaries: algo -> ``summarize`` output, for one env
    """
    for algo, entry in intervals(summaries).items():
        summaries[algo]["iqm"] = entry
    return "\n\n".join(
        (markdown_table(summaries, SCORE_COLUMNS), iqm_table(summaries), markdown_table(summaries, COST_COLUMNS))
    )


def rerender_tables(markdown: str, summaries: dict[str, dict[str, dict[str, Any]]]) -> str:
    """
    ``results.md`` with the tables of every env rendered again from ``summary.json`` (:func:`env_tables`) and the
    IQM bullet in its protocol; the rest (command, protocol, row notes, plots) stays as it was.

    :param markdown: a ``results.md`` written by ``grpo_zoo.benchmark`` (blocks separated by blank lines, one
        ``## <env> (...)`` section per env)
    :param summaries: env -> algo -> ``summarize`` output, as in ``summary.json`` (each gets its ``"iqm"`` entry)
    :return: the new markdown
    """
    blocks: list[str] = []
    section: str | None = None  # the env of the current section
    placed = in_protocol = False
    for block in markdown.split("\n\n"):
        if block.startswith("## "):
            section = next((env_id for env_id in summaries if block.startswith(f"## {env_id} (")), None)
            placed, in_protocol = False, block.strip() == "## Protocol"
        elif in_protocol:
            # The protocol's bullet list: the IQM bullet replaced, or added at its end
            lines = [line for line in block.split("\n") if not line.startswith(_IQM_BULLET)]
            block, in_protocol = "\n".join([*lines, IQM_PROTOCOL]), False
        elif section is not None and all(line.startswith("|") for line in block.strip().split("\n")):
            # The section's first table becomes the env's tables, the others (the old ones) go
            if placed:
                continue
            block, placed = env_tables(summaries[section]), True
        blocks.append(block)
    return "\n\n".join(blocks)


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


def _band(curves: list[list[dict[str, float]]], eval_freq: int) -> dict[str, list[float]]:
    """
    Mean and std of return over seeds, with the mean simulator steps and CPU seconds behind each point: seeds are
    aligned on the nominal grid 0, k, 2k... of real steps (where evaluations fire).
    """
    by_point: dict[int, list[dict[str, float]]] = defaultdict(list)
    for curve in curves:
        for row in curve:
            # Evaluations fire at the first step >= i*k (n_envs granularity): bin them to i*k; the final one is exact.
            point = int(row["real_steps"] // eval_freq * eval_freq) if row is not curve[-1] else int(row["real_steps"])
            by_point[point].append(row)
    # Keep points every seed reached (a budget cut by rounding leaves a ragged end).
    points = sorted(point for point, rows in by_point.items() if len(rows) == len(curves))
    band: dict[str, list[float]] = {"real_steps": [float(point) for point in points]}
    band["mean"] = [statistics.fmean(row["mean_return"] for row in by_point[p]) for p in points]
    band["std"] = [statistics.pstdev([row["mean_return"] for row in by_point[p]]) for p in points]
    for key in ("sim_steps", "cpu_s"):
        band[key] = [statistics.fmean(row[key] for row in by_point[p]) for p in points]
    return band


def plot_env(
    env_id: str,
    curves: dict[str, list[list[dict[str, float]]]],
    eval_freqs: dict[str, int],
    threshold: float,
    path: Path,
    levels: dict[str, float] | None = None,
) -> None:
    """
    Learning curves of every algorithm on one env: mean ± std over seeds, against simulator steps (probes
    included) and train CPU seconds, both on log axes (costs differ by orders of magnitude; the evaluation
    before training is left out).

    :param curves: algo -> one curve per seed
    :param eval_freqs: algo -> its evaluation frequency in real steps
    :param levels: algo -> final score of a row without a curve (the greedy controller), drawn as a level line
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for algo, seed_curves in curves.items():
        if not seed_curves:
            continue
        band = _band(seed_curves, eval_freqs[algo])
        mean, std = np.array(band["mean"]), np.array(band["std"])
        label = f"{algo} ({len(seed_curves)} seeds)"
        shown = np.array(band["real_steps"]) > 0  # a log axis has no 0: the evaluation before training is left out
        for ax, key in zip(axes, ("sim_steps", "cpu_s"), strict=True):
            x = np.array(band[key])
            (line,) = ax.plot(x[shown], mean[shown], label=label)
            ax.fill_between(x[shown], (mean - std)[shown], (mean + std)[shown], color=line.get_color(), alpha=0.2)
    for algo, level in (levels or {}).items():
        for ax in axes:
            ax.axhline(level, linestyle=":", linewidth=1.5, color="black", label=f"{algo} (final, no learning)")
    xlabels = ("simulator steps (real + probes), log", "train CPU seconds (evaluation excluded), log")
    for ax, xlabel in zip(axes, xlabels, strict=True):
        ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("deterministic eval return (true reward)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{env_id}: mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
