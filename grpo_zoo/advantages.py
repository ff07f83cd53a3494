"""Group-relative advantages: pure numpy math, no environment, no torch."""

import numpy as np

SCALE_REWARDS = ("group", "batch", "none")
SUPERVISION = ("outcome", "process")

# A group whose scores differ by less than this (relative to their magnitude) carries no signal:
# the differences are floating-point rounding, and scaling them by their std would turn noise into a
# full-size update (with two members, any difference scaled by its std is +-0.707).
ZERO_VARIANCE_RTOL = 1e-6


def zero_variance_mask(scores: np.ndarray) -> np.ndarray:
    """
    Groups whose members all scored the same, up to rounding (NaN entries are ignored).

    :param scores: Group scores, shape (n_groups, group_size)
    :return: Boolean mask, shape (n_groups,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    return _equal_up_to_rounding(scores[:, :, None], ~np.isnan(scores[:, :, None]))[:, 0]


def carries_signal(returns: np.ndarray) -> bool:
    """
    Whether any comparison of a table of returns-to-go can rank its members: some (group, step) with at least two
    members alive whose returns differ by more than rounding.

    :param returns: Returns-to-go, shape (n_groups, G, T), NaN where a member has no step
    """
    returns = np.asarray(returns, dtype=np.float64)
    alive = ~np.isnan(returns)
    compared = alive.sum(axis=1) >= 2  # [n_groups, T]
    return bool(np.any(compared & ~_equal_up_to_rounding(np.where(alive, returns, 0.0), alive)))


def _equal_up_to_rounding(returns: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """[n_groups, G, T] -> [n_groups, T]: the alive members' values differ by rounding at most."""
    spread = np.where(alive, returns, -np.inf).max(axis=1) - np.where(alive, returns, np.inf).min(axis=1)
    magnitude = np.maximum(1.0, np.where(alive, np.abs(returns), 0.0).max(axis=1))
    return ~(spread > ZERO_VARIANCE_RTOL * magnitude)


def group_advantages(
    returns: np.ndarray,
    weights: np.ndarray | None = None,
    supervision: str = "process",
    scale_rewards: str = "none",
    eps: float = 1e-8,
    leave_one_out: bool = False,
) -> np.ndarray:
    """
    Advantage of every sample of every group member: its return-to-go minus the group's baseline.

    ``returns[g, m, t]`` is the discounted return-to-go of member m of group g at its t-th step (NaN once the
    member has stopped). A state group scores one branched action per member (``T = 1``); an episode group
    scores whole episodes of different lengths.

    - ``"process"``: at each step t, the baseline is the (weighted) mean over the members still alive at t;
      a step where fewer than two members are alive has nothing to compare against (advantage 0);
    - ``"outcome"``: the member's whole return (t = 0) minus the group mean, for every step of its episode.

    With ``leave_one_out`` (RLOO, arXiv 2402.14740) the baseline of a member is the (weighted) mean of the *other*
    members alive at that step, which does not depend on its own score: the estimate is unbiased for any G, where the
    group mean shrinks every advantage by (G - 1) / G. It is the group mean's advantage divided by 1 - w_i
    (G / (G - 1) for G equal weights).

    ``scale_rewards="group"`` divides by the group's (Bessel-corrected) std at that step (GRPO, DeepSeekMath),
    ``"batch"`` by the std of every informative advantage of the rollout (one scale), ``"none"`` keeps the
    raw difference (Dr. GRPO, arXiv 2503.20783). Zero-variance comparisons get exactly zero advantage.

    :param returns: Returns-to-go, shape (n_groups, group_size, T), NaN where a member has no step
    :param weights: Member weights, shape (n_groups, group_size), rows summing to 1 (None: uniform). With
        exhaustive groups these are pi_old(a|s), so the baseline is the policy's expected score (V(s))
    :param supervision: "process" or "outcome"
    :param scale_rewards: "group", "batch" or "none"
    :param eps: Added to the std before dividing
    :param leave_one_out: Baseline each member with the mean of the other members (RLOO)
    :return: Advantages, shape (n_groups, group_size, T), NaN where ``returns`` is NaN
    """
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"`scale_rewards` must be one of {SCALE_REWARDS}, got scale_rewards={scale_rewards!r}")
    if supervision not in SUPERVISION:
        raise ValueError(f"`supervision` must be one of {SUPERVISION}, got supervision={supervision!r}")
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 3 or returns.shape[1] < 2:
        raise ValueError(f"`returns` must have shape (n_groups, group_size >= 2, T), got {returns.shape}")
    alive = ~np.isnan(returns)
    if supervision == "outcome":
        # Every step of an episode is credited with its whole return, compared as at the start
        first = group_advantages(returns[:, :, :1], weights, "process", scale_rewards, eps, leave_one_out)
        return np.where(alive, first, np.nan)
    if weights is None:
        weights = np.ones(returns.shape[:2])
    # [n_groups, G, T]: the weights of the members alive at each step, renormalised
    member_weights = np.where(alive, weights[:, :, None], 0.0)
    n_alive = alive.sum(axis=1, keepdims=True)
    total = member_weights.sum(axis=1, keepdims=True)
    member_weights = member_weights / np.where(total > 0, total, 1.0)
    filled = np.where(alive, returns, 0.0)
    baseline = (member_weights * filled).sum(axis=1, keepdims=True)
    advantages = np.where(alive, filled - baseline, 0.0)

    # Nothing to compare: a lone member, or scores equal up to rounding
    uninformative = (n_alive[:, 0] < 2) | _equal_up_to_rounding(filled, alive)  # [n_groups, T]
    advantages[np.broadcast_to(uninformative[:, None, :], advantages.shape)] = 0.0

    # The group's spread, from the differences to the group mean
    variance = (member_weights * advantages**2).sum(axis=1, keepdims=True)
    variance = variance * n_alive / np.maximum(n_alive - 1, 1)  # unbiased, as DeepSeekMath/TRL
    if leave_one_out:
        # R_i - mean_{j != i} R_j = (R_i - sum_j w_j R_j) / (1 - w_i), with 1 - w_i > 0 where two members are alive
        advantages = np.where(alive & (n_alive > 1), advantages / np.maximum(1.0 - member_weights, 1e-12), advantages)
    if scale_rewards == "group":
        advantages = advantages / (np.sqrt(variance) + eps)
    elif scale_rewards == "batch":
        informative = advantages[alive & ~uninformative[:, None, :]]
        if informative.size > 1:
            advantages = advantages / (informative.std() + eps)
    return np.where(alive, advantages, np.nan)


def discounted_returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """
    :param rewards: Rewards, shape (..., T), NaN after a member stopped (treated as 0)
    :param gamma: Discount factor
    :return: sum_{k >= t} gamma^(k-t) r_k for each t, shape (..., T), NaN where ``rewards`` is NaN
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[:-1])
    for t in reversed(range(rewards.shape[-1])):
        running = np.nan_to_num(rewards[..., t]) + gamma * running
        returns[..., t] = running
    return np.where(np.isnan(rewards), np.nan, returns)
