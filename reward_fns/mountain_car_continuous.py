"""Dense one-step reward for MountainCarContinuous-v0 (energy pumping with the env's fuel cost).

Observation ``[position, velocity]``; action ``[force]`` in ``[-1, 1]``.  The env's semi-implicit Euler step::

    velocity' = clip(velocity + 0.0015 * force - 0.0025 * cos(3 * position), -0.07, 0.07)
    position' = clip(position + velocity', -1.2, 0.6)   (velocity' = 0 on the left wall)

Gravity is the force of the potential ``U(x) = 0.0025 / 3 * sin(3 x)``, so the mechanical energy
``E = U(x) + velocity^2 / 2`` changes only through the engine; the goal ``position >= 0.45`` needs several swings.
The env pays ``+100`` at the goal and ``-0.1 * force^2`` per step.  The reward is the energy gained in the step,
normalised so that going from rest at the valley floor to rest at the goal earns 100 (the size of the env's
goal bonus), plus 100 on reaching the goal, minus the env's own fuel cost ``0.1 * force^2``.  A full push along
the velocity gains far more than it costs, so the greedy action pumps energy at full force and reaches the goal
in about 100 steps.
"""

import torch

from reward_fns.mountain_car import GRAVITY, energy

GOAL_POSITION = 0.45
GOAL_REWARD = 100.0
FUEL_COST = 0.1
# energy of rest at x = 0.45 minus energy of rest at the valley floor (x = -pi/6)
ENERGY_SCALE = GRAVITY / 3 * (1.0 + 0.9757233578266591)  # sin(3 * 0.45) = 0.97572...


def reward(state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
    """Energy gain (goal = 100) plus goal bonus minus fuel, shape ``[B, 1]``."""
    gain = GOAL_REWARD * (energy(next_state) - energy(state)) / ENERGY_SCALE
    goal = GOAL_REWARD * (next_state[..., 0] >= GOAL_POSITION).double()
    force = action.double().reshape(action.shape[0], -1)[:, 0].clamp(-1.0, 1.0)
    return (gain + goal - FUEL_COST * force**2).to(next_state.dtype).unsqueeze(-1)
