"""Validation of GRPO's arguments: a ``ValueError`` naming the parameter and the fix, before any work."""

import warnings
from typing import Any

import numpy as np
from gymnasium import spaces

from grpo_zoo.advantages import SCALE_REWARDS
from grpo_zoo.groups.episode import SUPERVISION
from grpo_zoo.rewards import RewardModel

GROUP_MODES = ("state", "episode")
# PPO arguments that mean nothing without a critic: accepted (drop-in for PPO) and warned about once
CRITIC_ARGUMENTS = ("vf_coef", "clip_range_vf", "gae_lambda")
SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def check_arguments(arguments: dict[str, Any], critic_kwargs: dict[str, Any]) -> None:
    """
    :param arguments: ``GRPO.__init__``'s ``locals()``
    :param critic_kwargs: The extra keyword arguments (PPO's critic arguments)
    """
    _check_critic_arguments(critic_kwargs)
    _check_choice("group_mode", arguments["group_mode"], GROUP_MODES)
    _check_choice("scale_rewards", arguments["scale_rewards"], SCALE_REWARDS)
    _check_choice("supervision", arguments["supervision"], SUPERVISION)
    _check_integer("group_size", arguments["group_size"], 2, "a group needs members to compare")
    for name in ("horizon", "n_steps", "batch_size", "n_epochs", "ref_update_interval"):
        _check_integer(name, arguments[name], 1)
    if arguments["beta"] < 0:
        raise ValueError(f"`beta` must be >= 0 (0 disables the KL penalty), got beta={arguments['beta']!r}")
    _check_clip_ranges(arguments["clip_range"], arguments["clip_range_high"])
    if arguments["exhaustive"] and arguments["group_mode"] != "state":
        raise ValueError("`exhaustive=True` enumerates the actions of a branched state: it needs group_mode='state'")
    if arguments["reward_function"] is not None:
        # Resolve import paths and check the weights now: a typo fails here, not after the first rollout
        RewardModel(arguments["reward_function"], arguments["reward_weights"])
    elif arguments["reward_weights"] is not None:
        raise ValueError("`reward_weights` weighs a list of reward functions, but `reward_function` is None")


def check_spaces(action_space: spaces.Space, exhaustive: bool) -> None:
    """:param action_space: The env's action space"""
    if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
        raise ValueError(
            f"GRPO does not support the action space {action_space}: supported are "
            f"{', '.join(s.__name__ for s in SUPPORTED_ACTION_SPACES)}"
        )
    if exhaustive and not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"`exhaustive=True` enumerates a Discrete action space, got {action_space}: use exhaustive=False")


def _check_critic_arguments(critic_kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(critic_kwargs) - set(CRITIC_ARGUMENTS) - {"use_sde", "sde_sample_freq"})
    if unknown:
        raise TypeError(f"GRPO got unexpected keyword argument(s): {', '.join(unknown)}")
    if critic_kwargs.get("use_sde"):
        raise ValueError("`use_sde=True` (gSDE) is not supported by GRPO: remove it to use the default Gaussian noise")
    ignored = sorted(set(critic_kwargs) & set(CRITIC_ARGUMENTS))
    if ignored:
        verb = "has" if len(ignored) == 1 else "have"
        warnings.warn(
            f"GRPO is critic-free: {', '.join(ignored)} {verb} no effect (no value function, no GAE). "
            "Remove them from the hyperparameters.",
            stacklevel=4,
        )


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {name}={value!r}")


def _check_integer(name: str, value: Any, minimum: int, why: str = "") -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        reason = f" ({why})" if why else ""
        raise ValueError(f"`{name}` must be an integer >= {minimum}{reason}, got {name}={value!r}")


def _check_clip_ranges(low: Any, high: Any) -> None:
    if isinstance(low, float | int) and low <= 0:
        raise ValueError(f"`clip_range` must be > 0, got clip_range={low!r}")
    if isinstance(low, float | int) and isinstance(high, float | int) and high < low:
        raise ValueError(
            f"`clip_range_high` must be >= `clip_range` (DAPO's clip-higher), got clip_range_high={high!r} < "
            f"clip_range={low!r}"
        )
