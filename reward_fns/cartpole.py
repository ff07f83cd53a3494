"""Dense one-step reward for CartPole-v1.

Observation ``[x, x_dot, theta, theta_dot]`` (m, m/s, rad, rad/s; ``theta > 0`` leans right), action 0 pushes
left and 1 pushes right with ``|F| = 10 N``.  The env integrates with explicit Euler at ``tau = 0.02 s``::

    x'     = x + tau * x_dot              theta'     = theta + tau * theta_dot
    x_dot' = x_dot + tau * x_acc(F)       theta_dot' = theta_dot + tau * theta_acc(F)

so the next position and angle come from the OLD velocities and do not depend on the action: only the next
velocities do.  Pushing right speeds the cart up (``dx_acc/dF ~ +0.98``) and rotates the pole left
(``dtheta_acc/dF ~ -1.46``).  The reward penalises a linear "sliding surface" of the next state,

    sigma = theta_dot' + K_THETA * theta' + K_X_DOT * x_dot' + K_X * x'

(pole falling toward its lean, plus a weak term that brings the cart back, gains of the same sign as an LQR
controller for this system), plus small quadratic penalties on the next angle and position relative to the
termination thresholds (12 deg, 2.4 m) and a unit penalty when the next state is terminal.  The greedy
one-step action drives ``sigma`` to zero, which balances the pole while keeping the cart near the centre.
"""

import math

import torch

THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
K_THETA = 3.0
K_X_DOT = 0.3
K_X = 0.1


def reward(state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
    """Shaping reward ``-(sigma^2 + small state penalties)`` of the next state, shape ``[B, 1]``."""
    del state, action  # the action acts through next_state's velocities only
    x, x_dot, theta, theta_dot = next_state.unbind(dim=-1)
    sigma = theta_dot + K_THETA * theta + K_X_DOT * x_dot + K_X * x
    penalty = sigma**2 + 0.1 * (theta / THETA_THRESHOLD) ** 2 + 0.01 * (x / X_THRESHOLD) ** 2
    failed = (theta.abs() > THETA_THRESHOLD) | (x.abs() > X_THRESHOLD)
    return (-penalty - failed.to(penalty.dtype)).unsqueeze(-1)
