"""The rollout buffer: samples point to their group's table, weights as the loss weighting says."""

import numpy as np

from grpo_zoo.groups.base import GroupRollout
from grpo_zoo.grpo.buffer import GroupRolloutBuffer


def rollout() -> GroupRollout:
    # One group of 2 members: member 0 ran 3 steps, member 1 ran 1
    index = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0]])
    return GroupRollout(
        observations=np.arange(8, dtype=np.float32).reshape(4, 2),
        obs_index=np.arange(4),
        actions=np.zeros((4, 1), dtype=np.float32),
        log_probs=np.zeros(4),
        index=index,
        returns=np.array([[[3.0, 2.0, 1.0], [1.0, np.nan, np.nan]]]),
        weights=np.array([[0.5, 0.5]]),
        distinct=np.ones(1, dtype=bool),
    )


def test_step_weighting_weighs_every_step_alike():
    buffer = GroupRolloutBuffer()
    buffer.fill(rollout(), np.ones(4))
    np.testing.assert_allclose(buffer.weights, [0.5, 0.5, 0.5, 0.5])


def test_run_weighting_weighs_every_run_alike():
    buffer = GroupRolloutBuffer()
    buffer.fill(rollout(), np.ones(4), loss_weighting="run")
    np.testing.assert_allclose(buffer.weights, [0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5])
    assert buffer.weights[:3].sum() == buffer.weights[3]  # the long run and the short one weigh the same


def test_minibatches_cover_every_sample_once():
    buffer = GroupRolloutBuffer()
    buffer.fill(rollout(), np.array([1.0, 2.0, 3.0, 4.0]))
    batches = list(buffer.get(3))
    assert [len(b.advantages) for b in batches] == [3, 1]
    assert sorted(float(a) for b in batches for a in b.advantages) == [1.0, 2.0, 3.0, 4.0]
