"""Group-relative advantages, checked against values computed by hand."""

import numpy as np
import pytest

from grpo_zoo.advantages import discounted_returns_to_go, group_advantages, zero_variance_mask

NAN = np.nan


def one_step(scores: np.ndarray, **kwargs) -> np.ndarray:
    """State groups: one scored action per member, [n_groups, G] -> [n_groups, G]."""
    return group_advantages(np.asarray(scores, dtype=float)[:, :, None], **kwargs)[:, :, 0]


def test_none_is_score_minus_group_mean():
    scores = np.array([[1.0, 2.0, 3.0, 6.0]])
    np.testing.assert_allclose(one_step(scores), [[-2.0, -1.0, 0.0, 3.0]])


def test_group_scaling_uses_unbiased_group_std():
    scores = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 1.0, 1.0]])
    # Row 0: mean 3, centred (-2, -1, 0, 3), sample variance 14/3. Row 1: centred +-0.5, sample variance 1/3.
    expected = np.array([[-2.0, -1.0, 0.0, 3.0] / np.sqrt(14 / 3), [-0.5, -0.5, 0.5, 0.5] / np.sqrt(1 / 3)])
    np.testing.assert_allclose(one_step(scores, scale_rewards="group", eps=0.0), expected)


def test_two_member_group_scaled_is_always_plus_minus_0707():
    # Scaled by the group's std, any difference, however tiny, becomes a full-size update (see ZERO_VARIANCE_RTOL)
    for gap in (1e-3, 1.0, 1e3):
        advantages = one_step(np.array([[0.0, gap]]), scale_rewards="group", eps=0.0)
        np.testing.assert_allclose(advantages, [[-1 / np.sqrt(2), 1 / np.sqrt(2)]])


def test_batch_scaling_divides_by_the_std_of_all_centred_scores():
    scores = np.array([[0.0, 2.0], [0.0, 4.0]])
    centred = np.array([[-1.0, 1.0], [-2.0, 2.0]])
    np.testing.assert_allclose(one_step(scores, scale_rewards="batch", eps=0.0), centred / centred.std())


@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_zero_variance_groups_get_exactly_zero(scale_rewards):
    # 0.1 * 3 / 3 != 0.1 in floating point: the rounding must not become an advantage
    scores = np.array([[0.1, 0.1, 0.1], [1e6 + 0.1, 1e6 + 0.1, 1e6 + 0.1], [0.0, 1.0, 2.0]])
    advantages = one_step(scores, scale_rewards=scale_rewards)
    assert np.all(advantages[:2] == 0.0)
    assert advantages[2, 0] < 0 < advantages[2, 2]
    np.testing.assert_array_equal(zero_variance_mask(scores), [True, True, False])


def test_weighted_baseline_for_exhaustive_groups():
    # Baseline is the policy's expected score: 0.75 * 1 + 0.25 * 0 = 0.75
    scores = np.array([[1.0, 0.0]])
    weights = np.array([[0.75, 0.25]])
    np.testing.assert_allclose(one_step(scores, weights=weights), [[0.25, -0.75]])


def test_invalid_choices():
    with pytest.raises(ValueError, match="scale_rewards"):
        group_advantages(np.zeros((1, 2, 1)), scale_rewards="std")
    with pytest.raises(ValueError, match="supervision"):
        group_advantages(np.zeros((1, 2, 1)), supervision="final")


def test_returns_to_go():
    np.testing.assert_allclose(discounted_returns_to_go(np.array([1.0, 1.0, 1.0]), 0.5), [1.75, 1.5, 1.0])
    # Padded rows: NaN after a member stopped stays NaN and adds nothing
    rtg = discounted_returns_to_go(np.array([[1.0, 1.0, NAN], [1.0, NAN, NAN]]), 1.0)
    np.testing.assert_allclose(rtg, [[2.0, 1.0, NAN], [1.0, NAN, NAN]])


def test_process_supervision_compares_members_alive_at_each_step():
    # Member 0 lives 3 steps, member 1 lives 1 step (gamma = 1): returns-to-go (3, 2, 1) and (1,)
    returns = np.array([[[3.0, 2.0, 1.0], [1.0, NAN, NAN]]])
    advantages = group_advantages(returns, supervision="process")
    np.testing.assert_allclose(advantages[0, 0], [1.0, 0.0, 0.0])  # step 0: 3 - 2; later steps: alone, no baseline
    np.testing.assert_allclose(advantages[0, 1], [-1.0, NAN, NAN])


def test_outcome_supervision_credits_every_step_with_the_episode_return():
    returns = np.array([[[3.0, 2.0, 1.0], [1.0, NAN, NAN]]])
    advantages = group_advantages(returns, supervision="outcome")
    np.testing.assert_allclose(advantages[0, 0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(advantages[0, 1], [-1.0, NAN, NAN])


def test_process_group_scaling_uses_the_members_alive_at_each_step():
    returns = np.array([[[0.0, 0.0], [2.0, 4.0], [4.0, NAN]]])
    advantages = group_advantages(returns, scale_rewards="group", eps=0.0)
    # Step 0: three members, centred (-2, 0, 2), sample std 2; step 1: two members, centred (-2, 2), std 2*sqrt(2)
    np.testing.assert_allclose(advantages[0, :, 0], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(advantages[0, :2, 1], [-1 / np.sqrt(2), 1 / np.sqrt(2)])


def test_leave_one_out_baseline_is_the_mean_of_the_other_members():
    returns = np.array([[[1.0, 2.0], [3.0, np.nan], [8.0, 5.0]]])  # [1 group, 3 members, 2 steps]
    advantages = group_advantages(returns, leave_one_out=True)
    # Step 0: three members alive; step 1: two (member 1 has stopped)
    np.testing.assert_allclose(advantages[0, :, 0], [1.0 - 5.5, 3.0 - 4.5, 8.0 - 2.0])
    np.testing.assert_allclose(advantages[0, [0, 2], 1], [2.0 - 5.0, 5.0 - 2.0])
    assert np.isnan(advantages[0, 1, 1])


def test_leave_one_out_with_weights_and_group_scaling():
    returns = np.array([[[1.0], [2.0], [6.0]]])
    weights = np.array([[0.5, 0.25, 0.25]])
    advantages = group_advantages(returns, weights, leave_one_out=True)[0, :, 0]
    others = [(0.25 * 2 + 0.25 * 6) / 0.5, (0.5 * 1 + 0.25 * 6) / 0.75, (0.5 * 1 + 0.25 * 2) / 0.75]
    np.testing.assert_allclose(advantages, returns[0, :, 0] - others)
    # Scaled by the group's std, RLOO is GRPO's advantage times G / (G - 1): the same direction, a larger step
    uniform = np.array([[[1.0], [2.0], [6.0], [3.0]]])
    np.testing.assert_allclose(
        group_advantages(uniform, scale_rewards="group", leave_one_out=True),
        group_advantages(uniform, scale_rewards="group") * 4 / 3,
    )
