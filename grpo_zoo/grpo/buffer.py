"""Rollout storage for GRPO: the samples of scored groups, with their advantages and surrogate weights."""

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor

from grpo_zoo.groups.base import GroupRollout
from grpo_zoo.groups.batches import take


LOSS_WEIGHTINGS = ("step", "run")


class GroupSamples(NamedTuple):
    observations: th.Tensor | dict[str, th.Tensor]
    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    weights: th.Tensor


class GroupRolloutBuffer:
    """
    The training samples of one rollout. Observations are stored once per state (the members of a state group
    share theirs); samples point to them.

    :param device: Torch device of the training batches
    """

    def __init__(self, device: th.device | str = "cpu"):
        self.device = th.device(device)
        self.rollout: GroupRollout | None = None
        self.advantages = np.zeros(0)
        self.weights = np.zeros(0)

    def fill(self, rollout: GroupRollout, advantages: np.ndarray, loss_weighting: str = "step") -> None:
        """
        :param rollout: The scored groups
        :param advantages: One advantage per sample, [N]
        :param loss_weighting: "step" (every sample weighs its member's weight) or "run" (a member's samples share its
            weight: every run, long or short, weighs the same, as DeepSeekMath's per-sequence mean)
        """
        self.rollout = rollout
        self.advantages = advantages
        group, member = rollout.index[:, 0], rollout.index[:, 1]
        # A member's weight in its group (1/G, or pi_old(a|s) in an exhaustive group), per sample
        self.weights = rollout.weights[group, member]
        if loss_weighting == "run" and len(group):
            run = group * rollout.weights.shape[1] + member
            self.weights = self.weights / np.bincount(run)[run]

    @property
    def size(self) -> int:
        """Number of training samples."""
        return len(self.advantages)

    def get(self, batch_size: int | None) -> Generator[GroupSamples, None, None]:
        """Shuffled minibatches over all samples (the whole rollout when ``batch_size`` is None)."""
        assert self.rollout is not None, "fill() the buffer first"
        rollout = self.rollout
        indices = np.random.permutation(self.size)
        batch_size = batch_size or self.size
        for start in range(0, self.size, batch_size):
            batch = indices[start : start + batch_size]
            obs: Any = take(rollout.observations, rollout.obs_index[batch])
            yield GroupSamples(
                observations=obs_as_tensor(obs, self.device),
                actions=th.as_tensor(rollout.actions[batch], device=self.device),
                old_log_prob=th.as_tensor(rollout.log_probs[batch], dtype=th.float32, device=self.device),
                advantages=th.as_tensor(self.advantages[batch], dtype=th.float32, device=self.device),
                weights=th.as_tensor(self.weights[batch], dtype=th.float32, device=self.device),
            )
