"""Dense one-step reward for MountainCar-v0 (energy pumping).

Observation ``[position, velocity]``; action 0/1/2 pushes left/none/right.  The env's semi-implicit Euler step::

    velocity' = clip(velocity + (action - 1) * 0.001 - 0.0025 * cos(3 * position), -0.07, 0.07)
    position' = clip(position + velocity', -1.2, 0.6)   (velocity' = 0 on the left wall)

Gravity along the track is the force of the potential ``U(x) = 0.0025 / 3 * sin(3 x)`` (the hill height
``sin(3x)`` scaled), so the mechanical energy ``E = U(x) + velocity^2 / 2`` is (nearly) conserved and only the
engine changes it.  The goal ``position >= 0.5`` needs more energy than the engine can give in one push: the
car must swing.  The reward is the energy gained in the step, normalised so that going from rest at the valley
floor to rest at the goal earns 1, plus a bonus of 1 on reaching the goal.  Its greedy action pushes along the
velocity (pumping), which reaches the goal in about 100 steps from the reset distribution.
"""

import torch

GRAVITY = 0.0025
GOAL_POSITION = 0.5
# energy of rest at the goal minus energy of rest at the valley floor (x = -pi/6)
ENERGY_SCALE = GRAVITY / 3 * (1.0 + 0.9974949866040544)  # sin(3 * 0.5) = 0.99749...


def energy(obs: torch.Tensor) -> torch.Tensor:
    """Mechanical energy per unit mass ``U(x) + v^2 / 2`` of ``[..., 2]`` observations, in float64."""
    x, v = obs.double().unbind(dim=-1)
    return GRAVITY / 3 * torch.sin(3 * x) + 0.5 * v**2


def reward(state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
    """Normalised energy gain of the step plus a goal bonus, shape ``[B, 1]``."""
    del action  # the engine acts through next_state's velocity
    gain = (energy(next_state) - energy(state)) / ENERGY_SCALE
    goal = (next_state[..., 0] >= GOAL_POSITION).double()
    return (gain + goal).to(next_state.dtype).unsqueeze(-1)
