"""Dense one-step reward for Pendulum-v1 (energy-shaped swing-up plus the env's cost on the next state).

Observation ``[cos(theta), sin(theta), theta_dot]`` with ``theta = 0`` upright; action ``[torque]`` in
``[-2, 2]``.  With ``g = 10``, ``m = l = 1`` and ``dt = 0.05`` the env steps (semi-implicit Euler)::

    theta_dot' = clip(theta_dot + (3 g / (2 l) * sin(theta) + 3 / (m l^2) * torque) * dt, -8, 8)
    theta'     = theta + theta_dot' * dt

and charges ``theta^2 + 0.1 theta_dot^2 + 0.001 torque^2`` on the OLD state, which does not depend on the
action.  The reward therefore applies that cost to the NEXT state (plus the torque term), and adds an
energy-shaping term for the swing-up: with ``E = theta_dot^2 / 2 + 3 g / (2 l) * cos(theta)``, gravity conserves
``E`` and the torque changes it at the rate ``3 / (m l^2) * torque * theta_dot``; upright at rest is
``E* = 3 g / (2 l) = 15``.  The term ``-W_ENERGY * (E' - E*)^2 / E*^2`` makes pumping energy toward ``E*``
score higher far from the top, and vanishes once the pendulum is on the upright orbit, where the cost
term takes over and stabilises it.
"""

import torch

G_OVER_L = 1.5 * 10.0  # 3 g / (2 l)
E_TARGET = G_OVER_L
W_ENERGY = 50.0


def reward(state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
    """Negative next-state cost minus energy-shaping penalty, shape ``[B, 1]``."""
    del state  # the env's own cost of the old state is the same for every action
    cos_th, sin_th, th_dot = next_state.unbind(dim=-1)
    theta = torch.atan2(sin_th, cos_th)
    torque = action.reshape(action.shape[0], -1)[:, 0].to(next_state.dtype).clamp(-2.0, 2.0)
    cost = theta**2 + 0.1 * th_dot**2 + 0.001 * torque**2
    energy = 0.5 * th_dot**2 + G_OVER_L * cos_th
    shaping = W_ENERGY * ((energy - E_TARGET) / E_TARGET) ** 2
    return (-cost - shaping).unsqueeze(-1)
