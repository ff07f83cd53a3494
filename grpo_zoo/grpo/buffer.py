"""Rollout storage for GRPO: the samples of scored groups, with their advantages and surrogate weights."""

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor

from grpo_zoo.groups.base import GroupRollout
from grpo_zoo.groups.batches import concatenate, take

LOSS_WEIGHTINGS = ("step", "run")


class GroupSamples(NamedTuple):
    """A minibatch of B samples, as :func:`~grpo_zoo.grpo.loss.minibatch_loss` takes it."""

    observations: th.Tensor | dict[str, th.Tensor]  # [B, *obs_shape] (or dict)
    actions: th.Tensor  # [B, *action_shape], as sampled
    old_log_prob: th.Tensor  # [B], log pi_old
    advantages: th.Tensor  # [B], each sample's entry of the group advantage table
    weights: th.Tensor  # [B], its member's weight (not normalised: the loss normalises over the minibatch)


class _Part(NamedTuple):
    """The samples taken from one collected rollout."""

    observations: Any  # [n, *obs_shape] (or dict)
    actions: np.ndarray
    log_probs: np.ndarray
    advantages: np.ndarray
    weights: np.ndarray


class GroupRolloutBuffer:
    """
    The training samples of one update: those of one rollout, or of several when GRPO waits for enough samples
    that carry a learning signal (``dynamic_sampling``).

    :param device: Torch device of the training batches
    """

    def __init__(self, device: th.device | str = "cpu"):
        self.device = th.device(device)
        self.parts: list[_Part] = []

    def reset(self) -> None:
        self.parts = []

    def fill(self, rollout: GroupRollout, advantages: np.ndarray, loss_weighting: str = "step") -> None:
        """Hold the samples of ``rollout`` only (see :meth:`add`)."""
        self.reset()
        self.add(rollout, advantages, loss_weighting)

    def add(
        self, rollout: GroupRollout, advantages: np.ndarray, loss_weighting: str = "step", informative_only: bool = False
    ) -> None:
        """
        :param rollout: The scored groups
        :param advantages: One advantage per sample, [N]
        :param loss_weighting: "step" (every sample weighs its member's weight) or "run" (a member's samples share its
            weight: every run, long or short, weighs the same, as DeepSeekMath's per-sequence mean)
        :param informative_only: Keep only the samples with a nonzero advantage (the others carry no policy gradient)
        """
        group, member = rollout.index[:, 0], rollout.index[:, 1]
        # A member's weight in its group (1/G, or pi_old(a|s) in an exhaustive group), per sample
        weights = rollout.weights[group, member]
        if loss_weighting == "run" and len(group):
            run = group * rollout.weights.shape[1] + member
            weights = weights / np.bincount(run)[run]
        keep = np.flatnonzero(advantages != 0) if informative_only else np.arange(len(advantages))
        self.parts.append(
            _Part(
                observations=take(rollout.observations, rollout.obs_index[keep]),
                actions=rollout.actions[keep],
                log_probs=rollout.log_probs[keep],
                advantages=advantages[keep],
                weights=weights[keep],
            )
        )

    @property
    def size(self) -> int:
        """Number of training samples."""
        return sum(len(part.advantages) for part in self.parts)

    @property
    def observations(self) -> Any:
        return concatenate([part.observations for part in self.parts])

    @property
    def advantages(self) -> np.ndarray:
        return np.concatenate([part.advantages for part in self.parts]) if self.parts else np.zeros(0)

    @property
    def weights(self) -> np.ndarray:
        return np.concatenate([part.weights for part in self.parts]) if self.parts else np.zeros(0)

    def get(self, batch_size: int | None) -> Generator[GroupSamples, None, None]:
        """Shuffled minibatches over all samples (the whole buffer when ``batch_size`` is None)."""
        assert self.parts, "add() samples first"
        observations = self.observations
        actions = np.concatenate([part.actions for part in self.parts])
        log_probs = np.concatenate([part.log_probs for part in self.parts])
        advantages, weights = self.advantages, self.weights
        indices = np.random.permutation(self.size)
        batch_size = batch_size or self.size
        for start in range(0, self.size, batch_size):
            batch = indices[start : start + batch_size]
            yield GroupSamples(
                observations=obs_as_tensor(take(observations, batch), self.device),
                actions=th.as_tensor(actions[batch], device=self.device),
                old_log_prob=th.as_tensor(log_probs[batch], dtype=th.float32, device=self.device),
                advantages=th.as_tensor(advantages[batch], dtype=th.float32, device=self.device),
                weights=th.as_tensor(weights[batch], dtype=th.float32, device=self.device),
            )
