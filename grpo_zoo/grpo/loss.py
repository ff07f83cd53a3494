"""The GRPO loss of one minibatch, written out with named intermediates (as CleanRL's ``ppo.py`` writes PPO's)."""

from dataclasses import dataclass

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy

from grpo_zoo.grpo.buffer import GroupSamples


@dataclass
class Objective:
    """
    The coefficients of the loss at one update.

    :param clip_low: Lower clip, ratio >= 1 - clip_low
    :param clip_high: Upper clip, ratio <= 1 + clip_high (DAPO's clip-higher)
    :param ent_coef: Entropy coefficient
    :param beta: Weight of the k3 KL penalty to the reference policy (used when there is one)
    :param normalize_advantage: Scale each minibatch's advantages to unit size, zeros kept at 0 (:func:`normalize_advantages`)
    """

    clip_low: float
    clip_high: float
    ent_coef: float
    beta: float
    normalize_advantage: bool


@dataclass
class LossStats:
    """
    What a minibatch reports, each statistic a mean under the loss's own per-sample weights.

    :param policy_loss: The clipped surrogate's loss (SB3's ``train/policy_gradient_loss``)
    :param entropy_loss: Minus the entropy (``train/entropy_loss``)
    :param approx_kl: KL(pi_old || pi_theta), estimated as sum_i w_i ((rho_i - 1) - log rho_i) (``train/approx_kl``;
        ``target_kl`` compares it)
    :param clip_fraction: Weight of the samples whose ratio is outside the clip range (``train/clip_fraction``)
    :param kl_ref: KL_k3(pi_theta || pi_ref), None without a reference policy (``train/kl_ref``)
    """

    policy_loss: float
    entropy_loss: float
    approx_kl: float
    clip_fraction: float
    kl_ref: float | None


def normalize_advantages(advantages: th.Tensor) -> th.Tensor:
    """
    Scale a minibatch's advantages by the root mean square of its informative ones (advantage not 0), which is their
    std about 0, the group baseline they are measured from.

    Unlike PPO's ``(A - mean) / std``, the minibatch mean is not subtracted: group-relative advantages are already
    centred on their own group's baseline, and a shift by the minibatch's mean would move samples across it (a
    member that beat its group could be pushed down) and give the samples without signal (advantage exactly 0: a
    group of equal scores, a lone member) a gradient of the minibatch's making. Those stay exactly 0; zeros are also
    left out of the scale, so that it does not depend on how many of them the minibatch holds.

    :param advantages: [B]
    :return: [B], zeros where ``advantages`` is 0; unchanged when every advantage is 0
    """
    informative = advantages[advantages != 0]  # [n_informative]
    if len(informative) == 0:
        return advantages
    return advantages / (th.sqrt(th.mean(informative**2)) + 1e-8)


def minibatch_loss(
    policy: ActorCriticPolicy, batch: GroupSamples, objective: Objective, ref_policy: ActorCriticPolicy | None = None
) -> tuple[th.Tensor, LossStats]:
    """
    The loss of one minibatch of samples i, with weights w_i (the buffer's, normalised over the minibatch) and
    rho_i = pi_theta(a_i|s_i) / pi_old(a_i|s_i)::

        L = -sum_i w_i min(rho_i A_i, clip(rho_i, 1 - eps_low, 1 + eps_high) A_i)
            - c_ent sum_i w_i H_i + beta sum_i w_i KL_k3,i(pi_theta || pi_ref)

    :param policy: pi_theta (in training mode)
    :param batch: The minibatch
    :param objective: The coefficients of the loss
    :param ref_policy: pi_ref (frozen), or None for no KL penalty
    :return: The loss (with gradients) and the minibatch's statistics, weighted by the same w_i
    """
    actions = batch.actions  # [B, *action_shape]
    if isinstance(policy.action_space, spaces.Discrete):
        actions = actions.long().flatten()
    distribution = policy.get_distribution(batch.observations)
    log_prob = distribution.log_prob(actions)  # [B]
    entropy = distribution.entropy()  # [B], None for distributions without a closed form
    advantages = batch.advantages  # [B]
    if objective.normalize_advantage:
        advantages = normalize_advantages(advantages)
    weights = batch.weights / batch.weights.sum()  # [B], summing to 1

    # Clipped surrogate with asymmetric bounds (DAPO's clip-higher)
    log_ratio = log_prob - batch.old_log_prob  # [B]
    ratio = th.exp(log_ratio)  # [B]
    clipped_ratio = th.clamp(ratio, 1 - objective.clip_low, 1 + objective.clip_high)  # [B]
    surrogate = th.min(ratio * advantages, clipped_ratio * advantages)  # [B]
    policy_loss = -(weights * surrogate).sum()
    entropy_loss = -(weights * (entropy if entropy is not None else -log_prob)).sum()
    loss = policy_loss + objective.ent_coef * entropy_loss

    kl_ref = None
    if ref_policy is not None:
        # k3 estimator of KL(pi_theta || pi_ref): r - log r - 1 with r = pi_ref / pi_theta (Schulman)
        with th.no_grad():
            ref_log_prob = ref_policy.get_distribution(batch.observations).log_prob(actions)  # [B]
        log_ref_ratio = ref_log_prob - log_prob  # [B]
        kl_ref = (weights * (th.exp(log_ref_ratio) - log_ref_ratio - 1)).sum()
        loss = loss + objective.beta * kl_ref

    with th.no_grad():
        # http://joschu.net/blog/kl-approx.html: E[(rho - 1) - log rho], under the loss's weights: the KL of the
        # distribution the loss optimises (an exhaustive group's actions weigh pi_old(a|s), not 1/G)
        approx_kl = (weights * ((ratio - 1) - log_ratio)).sum()
        clipped = (ratio < 1 - objective.clip_low) | (ratio > 1 + objective.clip_high)  # [B]
        clip_fraction = (weights * clipped.float()).sum()
    stats = LossStats(
        policy_loss=policy_loss.item(),
        entropy_loss=entropy_loss.item(),
        approx_kl=approx_kl.item(),
        clip_fraction=clip_fraction.item(),
        kl_ref=None if kl_ref is None else kl_ref.item(),
    )
    return loss, stats
