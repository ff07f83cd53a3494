"""Dense one-step reward for LunarLander-v3 and LunarLanderContinuous-v3 (the env's potential shaping).

Observation (both versions): ``[x, y, vx, vy, angle, angular_velocity, left_leg_contact, right_leg_contact]``,
positions relative to the helipad centre in half-viewport units (``|x| >= 1`` ends the episode), velocities
scaled by the same units per frame (50 FPS), angle in rad, angular velocity ``20 * omega / FPS``, leg
contacts 0/1.  Actions: Discrete ``0`` noop, ``1`` left engine, ``2`` main engine, ``3`` right engine;
Box ``[main, lateral]`` in ``[-1, 1]``: the main engine fires at ``(clip(main, 0, 1) + 1) / 2`` throttle when
``main > 0``, a side engine at ``clip(|lateral|, 0.5, 1)`` when ``|lateral| > 0.5``.

The env's reward is the one-step difference of the potential::

    shaping = -100 sqrt(x^2 + y^2) - 100 sqrt(vx^2 + vy^2) - 100 |angle| + 10 left_contact + 10 right_contact

(close to the pad, slow, upright, legs down is better) minus fuel, ``0.3`` per frame of full main engine and
``0.03`` per frame of full side engine, with ``-100`` for a crash or leaving the screen and ``+100`` for coming
to rest.  This reward is ``shaping(next_state) - shaping(state) - fuel(action)``, and ``-100`` when the next
state is off screen (``|x| >= 1``); the crash and rest events are not in the observation and are left out.
The action acts through the next state's velocities and angular velocity (the impulses are applied before
the physics step) and through the fuel term.
"""

import torch

MAIN_FUEL = 0.30
SIDE_FUEL = 0.03
OUT_OF_BOUNDS = -100.0


def shaping(obs: torch.Tensor) -> torch.Tensor:
    """The env's potential ``shaping`` of ``[..., 8]`` observations."""
    x, y, vx, vy, angle, _, left, right = obs.unbind(dim=-1)
    return -100 * torch.sqrt(x * x + y * y) - 100 * torch.sqrt(vx * vx + vy * vy) - 100 * angle.abs() + 10 * left + 10 * right


def fuel(action: torch.Tensor) -> torch.Tensor:
    """Fuel cost of ``[B, 1]`` discrete or ``[B, 2]`` continuous actions, shape ``[B]``."""
    action = action.reshape(action.shape[0], -1)
    if action.shape[1] == 1:  # Discrete(4)
        a = action[:, 0].round().long()
        return MAIN_FUEL * (a == 2).float() + SIDE_FUEL * ((a == 1) | (a == 3)).float()
    main, lateral = action[:, 0].float().clamp(-1.0, 1.0), action[:, 1].float().clamp(-1.0, 1.0)
    m_power = torch.where(main > 0, (main.clamp(min=0.0) + 1.0) * 0.5, torch.zeros_like(main))
    s_power = torch.where(lateral.abs() > 0.5, lateral.abs().clamp(0.5, 1.0), torch.zeros_like(lateral))
    return MAIN_FUEL * m_power + SIDE_FUEL * s_power


def reward(state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
    """``shaping(s') - shaping(s) - fuel(a)``, ``-100`` off screen, shape ``[B, 1]``."""
    r = shaping(next_state) - shaping(state) - fuel(action).to(next_state.dtype)
    off = next_state[..., 0].abs() >= 1.0
    return torch.where(off, torch.full_like(r, OUT_OF_BOUNDS), r).unsqueeze(-1)
