"""Interval estimates of the benchmark: IQM, stratified-bootstrap intervals, separation."""

import math

import numpy as np
import pytest
from scipy import stats

from grpo_zoo.benchmarking.stats import ahead, iqm, iqm_interval, separated, stratified_bootstrap_ci

N_RESAMPLES = 20_000


@pytest.mark.parametrize(
    "values,expected",
    [
        ([3.0, 1.0, 2.0, 4.0], 2.5),  # 1 cut at each end: mean of 2, 3
        ([8, 1, 7, 2, 6, 3, 5, 4], 4.5),  # 2 cut at each end: mean of 3, 4, 5, 6
        ([0, 0, 1, 100, 1000], 101 / 3),  # int(0.25 * 5) = 1 cut at each end: mean of 0, 1, 100
        ([5.0, 7.0], 6.0),  # nothing to cut: the mean
        ([[1, 2], [3, 4], [5, 6], [7, 8]], 4.5),  # runs x tasks: all values together, as rliable
    ],
)
def test_iqm_of_known_arrays(values, expected):
    assert iqm(values) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(4))
def test_interval_contains_the_iqm_and_matches_scipy_percentile_bootstrap(seed):
    values = np.random.default_rng(seed).normal(100, 20, size=5 + 3 * seed)
    interval = iqm_interval(values, n_resamples=N_RESAMPLES, seed=seed)
    assert interval.n == len(values) and interval.iqm == pytest.approx(iqm(values))
    assert interval.low < interval.iqm < interval.high
    # The same interval as scipy's percentile bootstrap of the same statistic, up to resampling noise
    reference = stats.bootstrap(
        (values,), iqm, n_resamples=N_RESAMPLES, method="percentile", random_state=np.random.default_rng(99)
    ).confidence_interval
    width = reference.high - reference.low
    assert interval.low == pytest.approx(reference.low, abs=0.05 * width)
    assert interval.high == pytest.approx(reference.high, abs=0.05 * width)


def test_deterministic_given_a_seed():
    values = np.random.default_rng(0).normal(size=20)
    assert iqm_interval(values, seed=3) == iqm_interval(values, seed=3)
    # The interval comes from the resamples: another seed, other resamples (few of them: other bounds)
    assert iqm_interval(values, n_resamples=200, seed=3).ci != iqm_interval(values, n_resamples=200, seed=4).ci


def test_one_seed_has_no_interval():
    interval = iqm_interval([490.0])
    assert interval.iqm == 490.0 and interval.n == 1
    assert math.isnan(interval.low) and math.isnan(interval.high)
    # Nothing separates from a single run, however far
    assert not separated(interval.ci, (0.0, 1.0)) and not separated((1e9, 1e9), interval.ci)


def test_nan_is_missing_and_inf_is_never_reached():
    assert iqm_interval([1.0, float("nan"), 3.0]).n == 2
    empty = iqm_interval([float("nan")])
    assert empty.n == 0 and math.isnan(empty.iqm)
    # One run of five never reached the threshold: trimmed like an outlier, but the interval reaches infinity
    one_never = iqm_interval([10.0, 20.0, 30.0, 40.0, math.inf])
    assert one_never.iqm == pytest.approx(30.0) and one_never.n == 5
    assert 10.0 <= one_never.low < 30.0 and one_never.high == math.inf
    # Two of four: more than a quarter, the IQM itself is infinite
    assert iqm_interval([10.0, 20.0, math.inf, math.inf]).iqm == math.inf
    assert iqm_interval([math.inf, math.inf]).ci == (math.inf, math.inf)


def test_zero_spread_is_a_point_interval():
    assert iqm_interval([500.0] * 5).ci == (500.0, 500.0)


def test_stratified_resampling_keeps_each_stratum_s_size():
    # Every resample draws 3 runs from the first task and 1 from the second: the pooled mean never moves
    low, high = stratified_bootstrap_ci([[0.0, 0.0, 0.0], [1.0]], statistic=np.mean, n_resamples=1000)
    assert low == high == 0.25
    # Pooled into one stratum it would
    low, high = stratified_bootstrap_ci([[0.0, 0.0, 0.0, 1.0]], statistic=np.mean, n_resamples=1000)
    assert low < 0.25 < high


def test_separated_and_ahead():
    assert separated((1.0, 2.0), (3.0, 4.0)) and separated((3.0, 4.0), (1.0, 2.0))
    assert not separated((1.0, 3.0), (2.0, 4.0)) and not separated((1.0, 2.0), (2.0, 3.0))  # touching
    assert ahead((3.0, 4.0), (1.0, 2.0)) and not ahead((1.0, 2.0), (3.0, 4.0))
    # Steps to a threshold: fewer is better, and never (inf) is behind everything
    assert ahead((1.0, 2.0), (3.0, math.inf), higher_is_better=False)
    assert not ahead((3.0, math.inf), (1.0, 2.0), higher_is_better=False)
    assert not separated((math.inf, math.inf), (math.inf, math.inf))
