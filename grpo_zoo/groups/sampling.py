"""Sampling group members from SB3 action distributions, with common random numbers when asked."""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor

from grpo_zoo.groups.batches import map_obs


def noise_width(action_space: spaces.Space) -> int:
    """Uniform numbers needed to draw one action by inversion."""
    if isinstance(action_space, spaces.Discrete):
        return 1
    if isinstance(action_space, spaces.MultiDiscrete):
        return len(action_space.nvec)
    return int(np.prod(action_space.shape or (1,)))


def sample_with_noise(distribution: Distribution, uniform: th.Tensor) -> th.Tensor:
    """
    Draw actions by inverting each distribution's CDF at the given uniform numbers: copies that share
    ``uniform`` and a state take the same action (common random numbers across a group's branches).

    :param distribution: SB3 distribution over a batch of B states
    :param uniform: Uniform numbers in [0, 1), shape [B, noise_width]
    :return: Actions [B, *action_shape] as SB3's ``get_actions`` returns them
    """
    if isinstance(distribution, CategoricalDistribution):
        return _invert_categorical(distribution.distribution.probs, uniform[:, 0])
    if isinstance(distribution, MultiCategoricalDistribution):
        columns = [_invert_categorical(d.probs, uniform[:, i]) for i, d in enumerate(distribution.distribution)]
        return th.stack(columns, dim=1)
    if isinstance(distribution, BernoulliDistribution):
        return (uniform < distribution.distribution.probs).float()
    if isinstance(distribution, DiagGaussianDistribution):
        normal = distribution.distribution
        gaussian = np.sqrt(2.0) * th.erfinv(2.0 * uniform.clamp(1e-7, 1 - 1e-7) - 1.0)
        return normal.mean + normal.stddev * gaussian
    raise ValueError(f"common random numbers are not implemented for {type(distribution).__name__}")


def policy_step(
    policy: ActorCriticPolicy, obs: Any, draw: Callable[..., th.Tensor], *args: Any
) -> tuple[np.ndarray, np.ndarray]:
    """
    pi_old's actions at a batch of observations, with their log-probabilities: the one sampling step of every
    collector (real steps and probe steps alike), without gradients.

    :param policy: pi_old
    :param obs: Policy observations, [B, *obs_shape] (or dict), numpy
    :param draw: How actions are drawn from pi_old(.|s), called as ``draw(distribution, *args)``:
        :func:`sample_with_noise` with uniform numbers (common random numbers), or a :class:`HeldNoise`'s ``sample``
    :param args: The rest of ``draw``'s arguments
    :return: The actions as sampled, [B, *action_shape] (Box actions flat, as SB3's ``get_actions``), and
        log pi_old(a|s), [B]
    """
    with th.no_grad():
        distribution = policy.get_distribution(obs_as_tensor(obs, policy.device))
        actions = draw(distribution, *args)
        log_probs = distribution.log_prob(actions)
    return actions.cpu().numpy(), log_probs.cpu().numpy()


def _invert_categorical(probs: th.Tensor, uniform: th.Tensor) -> th.Tensor:
    cdf = th.cumsum(probs, dim=-1)
    index = (cdf < uniform.unsqueeze(-1)).sum(dim=-1)
    return index.clamp(max=probs.shape[-1] - 1)


def repeat_obs(obs: th.Tensor | dict[str, th.Tensor], repeats: int) -> th.Tensor | dict[str, th.Tensor]:
    """[n, ...] -> [n * repeats, ...], each row repeated ``repeats`` times in a row."""
    return map_obs(lambda value: value.repeat_interleave(repeats, dim=0), obs)


def sample_members(
    policy: ActorCriticPolicy,
    obs: th.Tensor | dict[str, th.Tensor],
    real_actions: th.Tensor,
    group_size: int,
    exhaustive: bool,
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """
    The members of one group per branched state. Member 0 takes the action the real env took there (itself a
    sample of pi_old, so the members stay i.i.d.); with ``exhaustive``, member a takes action a.

    :param policy: pi_old
    :param obs: Observations of the branched states, [n, *obs_shape]
    :param real_actions: The actions the real env took there, [n, *action_shape]
    :param group_size: G (ignored when exhaustive)
    :param exhaustive: Every action of a Discrete space once, weighted by pi_old(a|s)
    :return: actions [n, G, *action_shape], log pi_old [n, G], surrogate weights [n, G] (rows sum to 1), and the
        member that took the real action [n]
    """
    n_states = len(real_actions)
    if exhaustive:
        assert isinstance(policy.action_space, spaces.Discrete)
        group_size = int(policy.action_space.n)
    distribution = policy.get_distribution(repeat_obs(obs, group_size))
    if exhaustive:
        actions = th.arange(group_size, device=policy.device).repeat(n_states)
        real_member = real_actions.reshape(n_states).long()
    else:
        actions = distribution.get_actions().reshape(n_states, group_size, *real_actions.shape[1:])
        actions[:, 0] = real_actions
        actions = actions.reshape(n_states * group_size, *real_actions.shape[1:])
        real_member = th.zeros(n_states, dtype=th.long, device=policy.device)
    log_probs = distribution.log_prob(actions).reshape(n_states, group_size)
    if exhaustive:
        weights = th.exp(log_probs)
        weights = weights / weights.sum(dim=1, keepdim=True)
    else:
        weights = th.full_like(log_probs, 1.0 / group_size)
    return actions.reshape(n_states, group_size, *actions.shape[1:]), log_probs, weights, real_member


class HeldNoise:
    """
    The uniform numbers each env's actions are drawn from (:func:`sample_with_noise`), each kept for ``hold`` steps and
    drawn anew when the env's episode starts. With ``hold > 1`` an env's actions are correlated in time (the same
    quantile of pi_old(.|s) at every state), while each one is still distributed as pi_old(.|s): the discrete
    analogue of gSDE's ``sde_sample_freq``. Persistent actions explore where independent ones dither (a uniform
    random policy never swings Acrobot up in 500 steps; held for 4 steps, it does in about half of the episodes).

    :param n_envs: Number of envs
    :param width: Uniform numbers per action (:func:`noise_width`)
    :param hold: Steps each number is kept (1: every action drawn anew)
    :param device: Torch device
    """

    def __init__(self, n_envs: int, width: int, hold: int, device: th.device):
        self.hold = hold
        # Drawn at the first step (hold=1 draws nothing: SB3's sampling, the same random stream as before)
        self.uniform = th.zeros(n_envs, width, device=device)
        self.age = np.zeros(n_envs, dtype=int)

    def sample(self, distribution: Distribution, episode_starts: np.ndarray, rows: np.ndarray | None = None) -> th.Tensor:
        """
        Actions of this step (with ``hold=1``, SB3's own ``get_actions``: the same random stream as PPO's sampling).

        :param distribution: pi_old at the envs' observations (of ``rows`` only, if given)
        :param episode_starts: Whether each env's episode starts at this step, [n_envs]
        :param rows: The envs ``distribution`` is about (None: all)
        :return: Actions [B, *action_shape] as SB3's ``get_actions`` returns them
        """
        if self.hold == 1:
            return distribution.get_actions()
        uniform = self.next(episode_starts)
        return sample_with_noise(distribution, uniform if rows is None else uniform[th.as_tensor(rows)])

    def next(self, episode_starts: np.ndarray) -> th.Tensor:
        """
        :param episode_starts: Whether each env's episode starts at this step
        :return: The uniform numbers of this step, [n_envs, width]
        """
        self.age = np.where(episode_starts, 0, self.age)
        renew = self.age % self.hold == 0
        if renew.any():
            index = th.as_tensor(np.flatnonzero(renew), device=self.uniform.device)
            self.uniform[index] = th.rand(len(index), self.uniform.shape[1], device=self.uniform.device)
        self.age += 1
        return self.uniform
