"""Group-relative advantages: pure numpy math, no environment, no torch."""

import numpy as np

SCALE_REWARDS = ("group", "batch", "none")

# A group whose scores differ by less than this (relative to their magnitude) carries no signal:
# the differences are floating-point rounding, and scaling them by their std would turn noise into a
# full-size update (DESIGN.md, mistake 4).
ZERO_VARIANCE_RTOL = 1e-6


def zero_variance_mask(scores: np.ndarray) -> np.ndarray:
    """
    Groups whose members all scored the same, up to rounding.

    :param scores: Group scores, shape (n_groups, group_size)
    :return: Boolean mask, shape (n_groups,)
    """
    spread = scores.max(axis=1) - scores.min(axis=1)
    magnitude = np.maximum(1.0, np.abs(scores).max(axis=1))
    return spread <= ZERO_VARIANCE_RTOL * magnitude


def group_advantages(
    scores: np.ndarray,
    scale_rewards: str = "none",
    weights: np.ndarray | None = None,
    eps: float = 1e-8,
) -> np.ndarray:
    """
    Advantage of each member of each group: its score minus the group mean.

    ``scale_rewards="group"`` divides by the group's std (GRPO, DeepSeekMath), ``"batch"`` by the std of
    all centred scores (a single scale for the rollout) and ``"none"`` keeps the raw difference
    (Dr. GRPO, arXiv 2503.20783). Zero-variance groups get exactly zero advantage.

    :param scores: Group scores, shape (n_groups, group_size)
    :param scale_rewards: "group", "batch" or "none"
    :param weights: Optional member weights, shape (n_groups, group_size), each row summing to 1.
        With exhaustive groups these are pi_old(a|s), so the baseline is the policy's expected score
        (an estimate of V(s)) and the group std is the weighted std.
    :param eps: Added to the std before dividing
    :return: Advantages, shape (n_groups, group_size)
    """
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"`scale_rewards` must be one of {SCALE_REWARDS}, got scale_rewards={scale_rewards!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"`scores` must have shape (n_groups, group_size >= 2), got {scores.shape}")
    if weights is None:
        weights = np.full_like(scores, 1.0 / scores.shape[1])
    mean = (weights * scores).sum(axis=1, keepdims=True)
    advantages = scores - mean
    degenerate = zero_variance_mask(scores)
    advantages[degenerate] = 0.0

    if scale_rewards == "group":
        group_size = scores.shape[1]
        # Unbiased (Bessel-corrected) std as in DeepSeekMath/TRL: a 2-member group always gives +-1/sqrt(2)
        variance = (weights * advantages**2).sum(axis=1, keepdims=True) * group_size / (group_size - 1)
        advantages = advantages / (np.sqrt(variance) + eps)
    elif scale_rewards == "batch":
        informative = advantages[~degenerate]
        if informative.size > 1:
            advantages = advantages / (informative.std() + eps)
    return advantages


def process_advantages(
    rewards: list[np.ndarray],
    gamma: float,
    scale_rewards: str = "none",
    eps: float = 1e-8,
) -> list[np.ndarray]:
    """
    Process supervision for episode groups: at each step t, a member's discounted return-to-go
    minus the mean return-to-go of the members still alive at t.

    :param rewards: One reward array per group member (episodes of different lengths)
    :param gamma: Discount factor
    :param scale_rewards: "group" (std over the members alive at t), "batch" or "none"
    :param eps: Added to the std before dividing
    :return: One advantage array per member, aligned with ``rewards``
    """
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"`scale_rewards` must be one of {SCALE_REWARDS}, got scale_rewards={scale_rewards!r}")
    returns_to_go = [discounted_returns_to_go(r, gamma) for r in rewards]
    longest = max(len(r) for r in rewards)
    # Pad with NaN: a member that has finished is not alive and does not enter the baseline
    table = np.full((len(rewards), longest), np.nan)
    for member, rtg in enumerate(returns_to_go):
        table[member, : len(rtg)] = rtg
    alive = ~np.isnan(table)
    n_alive = alive.sum(axis=0)
    mean = np.nansum(table, axis=0) / n_alive
    advantages = table - mean
    # A step where only one member is alive has nothing to compare against
    advantages[:, n_alive < 2] = 0.0
    if scale_rewards == "group":
        centred = np.where(alive, advantages, 0.0)
        variance = (centred**2).sum(axis=0) / np.maximum(n_alive - 1, 1)
        advantages = advantages / (np.sqrt(variance) + eps)
    elif scale_rewards == "batch":
        informative = advantages[alive & (n_alive >= 2)]
        if informative.size > 1:
            advantages = advantages / (informative.std() + eps)
    return [advantages[member, : len(r)] for member, r in enumerate(rewards)]


def discounted_returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """
    :param rewards: Rewards of one episode, shape (T,)
    :param gamma: Discount factor
    :return: sum_{k >= t} gamma^(k-t) r_k for each t, shape (T,)
    """
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns
