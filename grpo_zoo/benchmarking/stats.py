"""
Interval estimates over seeds, as rliable reports them (Agarwal et al., "Deep Reinforcement Learning at the Edge of
the Statistical Precipice", NeurIPS 2021; rl-zoo3's ``plot_from_file --iqm``): the interquartile mean (IQM) of the
runs with a stratified-bootstrap confidence interval, and whether two intervals separate.

- IQM: the mean of the middle 50% of the values (``scipy.stats.trim_mean(values, 0.25)``, rliable's
  ``aggregate_iqm``): robust to one outlying seed, less noisy than the median.
- Stratified bootstrap: each resample draws, within every stratum (task), as many runs as it has, with replacement,
  and computes the statistic on them all; the interval is the resamples' ``(1 - confidence) / 2`` and
  ``(1 + confidence) / 2`` quantiles. One stratum (one env) is the plain bootstrap over seeds. The quantiles are
  order statistics (numpy's ``lower`` / ``higher``), not interpolated: the interval is never narrower than
  rliable's and infinite values stay exact.
- A run that never reached a threshold is ``inf`` steps from it: worse than every run that did, trimmed off like
  any outlier while at most a quarter of the runs are, and an interval that reaches ``inf`` says it.
- NaN is a missing measurement: dropped, and ``Interval.n`` says how many values are left. One value has no
  interval (NaN bounds): nothing separates from it.

Pure functions of numpy and scipy; deterministic given ``seed``.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

# rliable's defaults: 25% trimmed at each end, 50,000 bootstrap resamples, 95% intervals
IQM_PROPORTION = 0.25
N_RESAMPLES = 50_000
CONFIDENCE = 0.95


def iqm(values: ArrayLike, axis: int | None = None) -> np.ndarray | float:
    """
    Interquartile mean: the mean of the values left once 25% are cut off at each end.

    :param values: scores (several axes: all of them together unless ``axis`` is given, as rliable does)
    :param axis: axis to reduce, None: every value
    :return: the IQM (an array when ``axis`` is given)
    """
    return stats.trim_mean(np.asarray(values, dtype=float), IQM_PROPORTION, axis=axis)


def stratified_bootstrap_ci(
    strata: Sequence[ArrayLike],
    statistic: Callable[..., Any] = iqm,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """
    Percentile bootstrap interval of ``statistic`` over runs, resampled within each stratum.

    :param strata: one array of run values per stratum (task), each with at least one value
    :param statistic: ``statistic(values, axis=1)`` of a ``[n_resamples, n_runs]`` array, one value per resample
    :param confidence: coverage of the interval
    :param n_resamples: bootstrap resamples
    :param seed: seed of the resampling
    :return: ``(low, high)``
    """
    rng = np.random.default_rng(seed)
    samples = [np.asarray(stratum, dtype=float).ravel() for stratum in strata]
    # [n_resamples, n_runs]: the runs of each stratum drawn with replacement from that stratum
    resampled = np.concatenate([x[rng.integers(0, len(x), size=(n_resamples, len(x)))] for x in samples], axis=1)
    values = statistic(resampled, axis=1)  # [n_resamples]
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail, method="lower")), float(np.quantile(values, 1 - tail, method="higher"))


@dataclass(frozen=True)
class Interval:
    """
    :param iqm: interquartile mean of the values (NaN without any)
    :param low: lower bound of the confidence interval (NaN with fewer than two values)
    :param high: upper bound of the confidence interval (NaN with fewer than two values)
    :param n: values behind it (NaN dropped, ``inf`` kept)
    """

    iqm: float
    low: float
    high: float
    n: int

    @property
    def ci(self) -> tuple[float, float]:
        """``(low, high)``"""
        return self.low, self.high


def iqm_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """
    IQM of one task's runs and its bootstrap interval.

    :param values: one value per run; NaN: not measured (dropped), ``inf``: never got there (kept, worst)
    :param confidence: coverage of the interval
    :param n_resamples: bootstrap resamples
    :param seed: seed of the resampling
    :return: the interval
    """
    present = np.asarray(values, dtype=float)
    present = present[~np.isnan(present)]
    nan = float("nan")
    if len(present) == 0:
        return Interval(nan, nan, nan, 0)
    estimate = float(iqm(present))
    if len(present) == 1:
        return Interval(estimate, nan, nan, 1)
    low, high = stratified_bootstrap_ci([present], iqm, confidence, n_resamples, seed)
    return Interval(estimate, low, high, len(present))


def ahead(a: tuple[float, float], b: tuple[float, float], higher_is_better: bool = True) -> bool:
    """
    Whether interval ``a`` lies entirely on the better side of interval ``b`` (touching is not separated).

    :param a: ``(low, high)``
    :param b: ``(low, high)``
    :param higher_is_better: scores: True; steps or seconds to a threshold: False
    :return: False when a bound is NaN (no interval)
    """
    return bool(a[0] > b[1]) if higher_is_better else bool(a[1] < b[0])


def separated(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """
    Whether two intervals do not overlap, so that one may be said to be ahead of the other.

    :param a: ``(low, high)``
    :param b: ``(low, high)``
    :return: False when a bound is NaN (no interval)
    """
    return ahead(a, b) or ahead(b, a)
