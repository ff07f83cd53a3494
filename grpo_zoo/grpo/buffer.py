"""Rollout storage for GRPO: group members with their old log-probabilities, weights and advantages."""

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor

from grpo_zoo.advantages import group_advantages, zero_variance_mask


class GroupSamples(NamedTuple):
    observations: th.Tensor | dict[str, th.Tensor]
    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    weights: th.Tensor


class GroupRolloutBuffer:
    """
    A rollout of group members, filled either group by group (state groups: G members share one
    observation and are scored together) or sample by sample (episode groups: advantages computed by
    the collector). Observations are stored once per state; members point to them.

    :param device: Torch device of the training batches
    """

    def __init__(self, device: th.device | str = "cpu"):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self._observations: list[Any] = []  # one batch per add, [n, *obs_shape] or dict
        self._obs_index: list[np.ndarray] = []  # per member: index into the concatenated observations
        self._actions: list[np.ndarray] = []
        self._log_probs: list[np.ndarray] = []
        self._weights: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []  # state groups: (n_groups, G)
        self._advantages: list[np.ndarray] = []  # episode groups: per member
        self._distinct: list[np.ndarray] = []  # state groups: members' env actions not all equal
        self._episode_scores: list[np.ndarray] = []  # episode groups: member returns, for statistics only
        self._n_obs = 0
        self.n_groups = 0
        self.n_zero_variance = 0
        self.n_distinct_groups = 0  # groups whose members did not all take the same action
        self.n_blind_groups = 0  # ... and still scored the same: the reward cannot tell those actions apart
        self.group_reward_std = float("nan")
        self._ready: dict[str, Any] | None = None

    def add_groups(
        self,
        obs: Any,
        actions: np.ndarray,
        log_probs: np.ndarray,
        scores: np.ndarray,
        weights: np.ndarray,
        distinct: np.ndarray,
    ) -> None:
        """
        :param obs: One observation per group, [n_groups, *obs_shape] (or dict)
        :param actions: Member actions, [n_groups, G, *action_shape]
        :param log_probs: log pi_old of each member's action, [n_groups, G]
        :param scores: Member scores, [n_groups, G]
        :param weights: Member weights in the surrogate, [n_groups, G], rows summing to 1
        :param distinct: [n_groups], whether the env received different actions within the group (after clipping)
        """
        n_groups, group_size = scores.shape
        self._add_obs(obs, np.repeat(np.arange(n_groups), group_size))
        self._actions.append(actions.reshape(n_groups * group_size, *actions.shape[2:]))
        self._log_probs.append(log_probs.reshape(-1))
        self._weights.append(weights.reshape(-1))
        self._scores.append(scores)
        self._distinct.append(distinct)

    def add_samples(self, obs: Any, actions: np.ndarray, log_probs: np.ndarray, advantages: np.ndarray) -> None:
        """
        :param obs: [n, *obs_shape] (or dict), one per sample
        :param actions: [n, *action_shape]
        :param log_probs: [n]
        :param advantages: [n], already group-relative
        """
        self._add_obs(obs, np.arange(len(advantages)))
        self._actions.append(actions)
        self._log_probs.append(log_probs.reshape(-1))
        self._weights.append(np.ones(len(advantages)))
        self._advantages.append(advantages.reshape(-1))

    def note_group_scores(self, scores: np.ndarray) -> None:
        """Record the member scores of a group whose advantages were computed by the collector."""
        self._episode_scores.append(np.asarray(scores, dtype=np.float64))

    def _add_obs(self, obs: Any, local_index: np.ndarray) -> None:
        self._observations.append(obs)
        self._obs_index.append(local_index + self._n_obs)
        self._n_obs += len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)

    def finalize(self, scale_rewards: str) -> None:
        """Turn state-group scores into advantages and stack everything for training."""
        if self._scores:
            scores = np.concatenate(self._scores)
            weights = np.concatenate(self._weights).reshape(scores.shape)
            advantages = group_advantages(scores, scale_rewards, weights).reshape(-1)
            distinct = np.concatenate(self._distinct)
            self.n_distinct_groups = int(distinct.sum())
            self.n_blind_groups = int((distinct & zero_variance_mask(scores)).sum())
        else:
            scores = np.stack(self._episode_scores)
            advantages = np.concatenate(self._advantages)
            if scale_rewards == "batch":
                informative = advantages[advantages != 0.0]
                if informative.size > 1:
                    advantages = advantages / (informative.std() + 1e-8)
        self.n_groups = len(scores)
        self.n_zero_variance = int(zero_variance_mask(scores).sum())
        if not self._scores:
            # Members of an episode group always act on their own: every group counts as distinct
            self.n_distinct_groups, self.n_blind_groups = self.n_groups, self.n_zero_variance
        self.group_reward_std = float(scores.std(axis=1, ddof=1).mean())
        first = self._observations[0]
        if isinstance(first, dict):
            observations: Any = {key: np.concatenate([o[key] for o in self._observations]) for key in first}
        else:
            observations = np.concatenate(self._observations)
        self._ready = {
            "observations": observations,
            "obs_index": np.concatenate(self._obs_index),
            "actions": np.concatenate(self._actions),
            "log_probs": np.concatenate(self._log_probs),
            "advantages": advantages,
            "weights": np.concatenate(self._weights),
        }

    @property
    def size(self) -> int:
        """Number of group members (training samples)."""
        return 0 if self._ready is None else len(self._ready["advantages"])

    def get(self, batch_size: int | None) -> Generator[GroupSamples, None, None]:
        """Shuffled minibatches over all members (the whole rollout when ``batch_size`` is None)."""
        assert self._ready is not None, "call finalize() first"
        data = self._ready
        indices = np.random.permutation(self.size)
        batch_size = batch_size or self.size
        for start in range(0, self.size, batch_size):
            batch = indices[start : start + batch_size]
            obs_rows = data["obs_index"][batch]
            observations = data["observations"]
            if isinstance(observations, dict):
                obs = {key: value[obs_rows] for key, value in observations.items()}
            else:
                obs = observations[obs_rows]
            yield GroupSamples(
                observations=obs_as_tensor(obs, self.device),
                actions=th.as_tensor(data["actions"][batch], device=self.device),
                old_log_prob=th.as_tensor(data["log_probs"][batch], dtype=th.float32, device=self.device),
                advantages=th.as_tensor(data["advantages"][batch], dtype=th.float32, device=self.device),
                weights=th.as_tensor(data["weights"][batch], dtype=th.float32, device=self.device),
            )
