"""
The group mechanisms by name: the GRPO arguments each reads and a one-line summary.

One table for every reader: :mod:`grpo_zoo.groups.registry` pairs each name with its collector (GRPO and its
argument checks), the Optuna sampler (:mod:`grpo_zoo.zoo.sampler`) tunes only what a mode reads, and the tuning
report leaves the other keys out of a YAML entry. Standard library only, so that the sampler stays cheap to
import (no torch).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


# GRPO's group mode when none is given: time bins work with any env and VecEnv wrapper and learn from the env reward
DEFAULT_GROUP_MODE = "time"

# GRPO arguments about the later steps of a run: how they are ranked and how much each weighs
LATER_STEP_ARGUMENTS = ("supervision", "loss_weighting")


@dataclass(frozen=True)
class ModeSpec:
    """
    :param arguments: The GRPO arguments the mode's collector reads (passed to its constructor)
    :param summary: One line for the docs and error messages
    :param later_steps: Whether the samples include the later steps of a run, which GRPO's ``supervision``
        ranks: True, False, or the name of the boolean argument that turns them on
    """

    arguments: tuple[str, ...]
    summary: str
    later_steps: bool | str


MODES: dict[str, ModeSpec] = {
    "state": ModeSpec(
        ("group_size", "horizon", "exhaustive", "branch_fraction", "train_continuations"),
        "branch the env at a fraction of the visited states; members continue from exactly that state",
        later_steps="train_continuations",
    ),
    "episode": ModeSpec(
        ("group_size", "noise_hold"),
        "groups of envs reset with one shared seed compare their episodes (any env, no branching)",
        later_steps=True,
    ),
    "time": ModeSpec(
        ("noise_hold",),
        "every episode of the rollout is a member, compared with the others at the same time step (GPG's "
        "time-binned baseline): any env and VecEnv wrapper, no branching, no shared seed",
        later_steps=True,
    ),
}


def arguments_in_effect(group_mode: str, hyperparams: Mapping[str, Any]) -> tuple[str, ...]:
    """
    The GRPO arguments that change what a mode does, given the other hyperparameters.

    :param group_mode: A key of ``MODES``
    :param hyperparams: GRPO's arguments (a missing one takes GRPO's default, False for a boolean)
    :return: the mode's arguments, and ``supervision`` and ``loss_weighting`` when its samples include the later
        steps of a run
    """
    spec = MODES[group_mode]
    later_steps = spec.later_steps if isinstance(spec.later_steps, bool) else bool(hyperparams.get(spec.later_steps, False))
    return (*spec.arguments, *LATER_STEP_ARGUMENTS) if later_steps else spec.arguments


def arguments_of_other_modes(group_mode: str) -> tuple[str, ...]:
    """
    The GRPO arguments that only the other modes read: without effect in ``group_mode`` (GRPO refuses some of them).

    :param group_mode: A key of ``MODES``
    :return: the arguments some other mode reads and ``group_mode`` does not, in the table's order
    """
    own = MODES[group_mode].arguments
    return tuple(dict.fromkeys(name for spec in MODES.values() for name in spec.arguments if name not in own))
