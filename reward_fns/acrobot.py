"""Dense one-step reward for Acrobot-v1 (energy pumping toward the swing-up, plus tip height).

Observation ``[cos th1, sin th1, cos th2, sin th2, dth1, dth2]`` (``th1`` from hanging down, ``th2`` relative to
link 1); action 0/1/2 applies torque -1/0/+1 at the elbow only.  Links: masses ``m1 = m2 = 1``, lengths
``l1 = 1``, centres of mass ``lc1 = lc2 = 0.5``, moments of inertia ``I1 = I2 = 1``, ``g = 9.8``; the env
integrates the equations of motion with RK4 over ``dt = 0.2`` and clips ``|dth1| <= 4 pi``, ``|dth2| <= 9 pi``.
The mechanical energy, with the env's own mass matrix (``d1``, ``d2`` in ``_dsdt``)::

    T = (d11 dth1^2 + 2 d12 dth1 dth2 + d22 dth2^2) / 2
    d11 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos th2) + I1 + I2
    d12 = m2 (lc2^2 + l1 lc2 cos th2) + I2,   d22 = m2 lc2^2 + I2
    V = -m1 g lc1 cos th1 - m2 g (l1 cos th1 + lc2 cos(th1 + th2))

changes only through the torque, at the rate ``torque * dth2`` (gravity conserves it).  The goal is the tip
height ``-cos th1 - cos(th1 + th2) > 1``; hanging at rest has ``E = -19.6``, the goal line needs at least
``E = 9.8`` and standing upright ``E = 19.6``.  The reward is the energy gained in the step, normalised by
the upright energy (greedy: torque along ``dth2``, i.e. pumping), plus ``W_HEIGHT`` times the gain in tip
height (it times the pumping so the tip swings up rather than the links spinning), and 1 on reaching the goal.
The greedy one-step policy reaches the goal in about 80 steps (random: 500, the time limit).
"""

import torch

M1 = M2 = 1.0
L1 = 1.0
LC1 = LC2 = 0.5
I1 = I2 = 1.0
G = 9.8
E_UPRIGHT = G * (M1 * LC1 + M2 * (L1 + LC2))  # 19.6
W_HEIGHT = 0.3


def energy(obs: torch.Tensor) -> torch.Tensor:
    """Mechanical energy of ``[..., 6]`` Acrobot observations, in float64."""
    c1, s1, c2, s2, d1, d2 = obs.double().unbind(dim=-1)
    d11 = M1 * LC1**2 + M2 * (L1**2 + LC2**2 + 2 * L1 * LC2 * c2) + I1 + I2
    d12 = M2 * (LC2**2 + L1 * LC2 * c2) + I2
    d22 = M2 * LC2**2 + I2
    kinetic = 0.5 * (d11 * d1**2 + 2 * d12 * d1 * d2 + d22 * d2**2)
    cos12 = c1 * c2 - s1 * s2  # cos(th1 + th2)
    potential = -M1 * G * LC1 * c1 - M2 * G * (L1 * c1 + LC2 * cos12)
    return kinetic + potential


def tip_height(obs: torch.Tensor) -> torch.Tensor:
    """Height of the tip above the pivot, ``-cos th1 - cos(th1 + th2)`` (the goal is > 1)."""
    c1, s1, c2, s2 = obs.double()[..., :4].unbind(dim=-1)
    return -c1 - (c1 * c2 - s1 * s2)


def reward(state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
    """Normalised energy gain plus tip-height gain and goal bonus, shape ``[B, 1]``."""
    del action  # the torque acts through next_state's angles and velocities
    h1 = tip_height(next_state)
    gain = (energy(next_state) - energy(state)) / E_UPRIGHT + W_HEIGHT * (h1 - tip_height(state))
    goal = (h1 > 1.0).double()
    return (gain + goal).to(next_state.dtype).unsqueeze(-1)
