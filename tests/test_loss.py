"""The minibatch loss: its statistics weighted as the loss weighs samples, and advantages without signal left at 0."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger

from grpo_zoo import GRPO
from grpo_zoo.groups.base import GroupRollout
from grpo_zoo.grpo.loss import normalize_advantages

OBSERVATIONS = np.array(
    [[0.1, 0.2, 0.03, -0.1], [0.0, -0.3, 0.01, 0.2], [-0.1, 0.1, -0.02, 0.0], [0.05, 0.0, 0.0, 0.1]], dtype=np.float32
)


def model_with_one_group(advantages, weights, log_ratios, **kwargs) -> GRPO:
    """
    A CartPole model whose buffer holds one group, one sample per member, with the given advantages and member
    weights, and pi_old set so that log(pi_theta / pi_old) of each sample is ``log_ratios`` before any update.
    """
    model = GRPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=1, seed=0), seed=0, n_epochs=1, **kwargs)
    model.set_logger(Logger(folder=None, output_formats=[]))
    n = len(advantages)
    observations, actions = OBSERVATIONS[:n], np.arange(n) % 2
    with th.no_grad():
        log_probs = model.policy.get_distribution(th.as_tensor(observations)).log_prob(th.as_tensor(actions)).numpy()
    rollout = GroupRollout(
        observations=observations,
        obs_index=np.arange(n),
        actions=actions,
        log_probs=log_probs - np.asarray(log_ratios, dtype=np.float32),
        index=np.stack([np.zeros(n, dtype=int), np.arange(n), np.zeros(n, dtype=int)], axis=1),
        returns=np.zeros((1, n, 1)),
        weights=np.array([weights]),
        distinct=np.ones(1, dtype=bool),
    )
    model.rollout_buffer.fill(rollout, np.asarray(advantages, dtype=np.float64))  # type: ignore[attr-defined]
    return model


def parameters(model: GRPO) -> th.Tensor:
    return th.cat([p.detach().flatten().clone() for p in model.policy.parameters()])


def test_approx_kl_and_clip_fraction_are_weighted_like_the_loss():
    # Two members weighted 0.9 and 0.1 (as pi_old weighs an exhaustive group's actions): only the light one moved
    model = model_with_one_group([1.0, -1.0], [0.9, 0.1], log_ratios=[0.0, 1.0], batch_size=2, clip_range=0.2)
    model.train()
    logged = model.logger.name_to_value
    kl = np.array([0.0, np.e - 2])  # (rho - 1) - log rho, rho = 1 and e
    assert logged["train/approx_kl"] == pytest.approx(0.9 * kl[0] + 0.1 * kl[1], rel=1e-4)  # not the plain mean, 0.36
    assert logged["train/clip_fraction"] == pytest.approx(0.1)  # rho = e is clipped: its weight, not half the samples


@pytest.mark.parametrize(
    "log_ratios, target_kl, stops",
    [
        ([0.0, 1.0], 0.1, False),  # weighted KL 0.072 < 1.5 * 0.1 (the plain mean, 0.36, would stop)
        ([0.5, 0.0], 0.06, True),  # weighted KL 0.134 > 1.5 * 0.06 (the plain mean, 0.074, would not)
    ],
)
def test_target_kl_compares_the_weighted_kl(log_ratios, target_kl, stops):
    model = model_with_one_group([1.0, -1.0], [0.9, 0.1], log_ratios, batch_size=2, target_kl=target_kl)
    before = parameters(model)
    model.train()
    assert th.equal(parameters(model), before) == stops  # stopped before the first step, or took it


def test_normalize_advantages_leaves_zero_signal_at_zero():
    advantages = th.tensor([0.0, 0.0, 2.0, -1.0, 0.5])
    normalized = normalize_advantages(advantages)
    assert normalized[:2].tolist() == [0.0, 0.0]  # exactly: a tied group's members get no gradient
    assert th.all(th.sign(normalized) == th.sign(advantages))  # no sample crosses its group's baseline
    assert th.sqrt(th.mean(normalized[2:] ** 2)).item() == pytest.approx(1.0)  # unit scale over the informative ones
    # The scale ignores how many zeros the minibatch holds
    assert th.equal(normalize_advantages(th.tensor([2.0, -1.0, 0.5])), normalized[2:])
    assert th.equal(normalize_advantages(th.zeros(3)), th.zeros(3))


def test_normalize_advantage_gives_tied_members_no_policy_gradient():
    # Two members of a tied comparison (advantage 0) and two informative ones; before any update rho = 1, so the
    # policy loss is -sum_i w_i A_i: only the informative samples, scaled to unit root mean square, contribute
    model = model_with_one_group(
        [0.0, 0.0, 2.0, -1.0], [0.25] * 4, log_ratios=[0.0] * 4, batch_size=4, normalize_advantage=True, ent_coef=0.0
    )
    model.train()
    scale = np.sqrt((2.0**2 + 1.0**2) / 2)
    expected = -0.25 * (2.0 - 1.0) / scale  # PPO's (A - mean) / std would give 0 here: every sample moved by -0.25
    assert model.logger.name_to_value["train/policy_gradient_loss"] == pytest.approx(expected, rel=1e-4)
