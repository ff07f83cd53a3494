"""Validation of GRPO's arguments: a ``ValueError`` naming the parameter and the fix, before any work."""

import io
import math
import pathlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.save_util import load_from_zip_file

from grpo_zoo.advantages import SCALE_REWARDS, SUPERVISION
from grpo_zoo.grpo.buffer import LOSS_WEIGHTINGS
from grpo_zoo.groups.registry import GROUP_MODES
from grpo_zoo.rewards import RewardModel
from grpo_zoo.schedules import parse_schedule

if TYPE_CHECKING:
    from grpo_zoo.grpo.grpo import GRPO
# PPO arguments that mean nothing without a critic: accepted (drop-in for PPO) and warned about once
CRITIC_ARGUMENTS = ("vf_coef", "clip_range_vf", "gae_lambda")
SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def check_arguments(arguments: dict[str, Any], critic_kwargs: dict[str, Any]) -> None:
    """
    :param arguments: ``GRPO.__init__``'s ``locals()``
    :param critic_kwargs: The extra keyword arguments (PPO's critic arguments)
    """
    _check_critic_arguments(critic_kwargs)
    _check_choice("group_mode", arguments["group_mode"], tuple(GROUP_MODES))
    _check_choice("scale_rewards", arguments["scale_rewards"], SCALE_REWARDS)
    _check_choice("supervision", arguments["supervision"], SUPERVISION)
    _check_choice("loss_weighting", arguments["loss_weighting"], LOSS_WEIGHTINGS)
    _check_integer("group_size", arguments["group_size"], 2, "a group needs members to compare")
    for name in ("horizon", "n_steps", "batch_size", "n_epochs", "ref_update_interval", "noise_hold"):
        _check_integer(name, arguments[name], 1)
    _check_number("branch_fraction", arguments["branch_fraction"], "in (0, 1]", lambda x: 0 < x <= 1)
    _check_number("gamma", arguments["gamma"], "in (0, 1]", lambda x: 0 < x <= 1)
    _check_number("beta", arguments["beta"], ">= 0 (0 disables the KL penalty)", lambda x: x >= 0)
    _check_number("ent_coef", arguments["ent_coef"], "a finite number", lambda x: True)
    _check_number("max_grad_norm", arguments["max_grad_norm"], "> 0", lambda x: x > 0)
    if arguments["target_kl"] is not None:
        _check_number("target_kl", arguments["target_kl"], "> 0 or None", lambda x: x > 0)
    _check_schedule("learning_rate", arguments["learning_rate"])
    _check_clip_ranges(arguments["clip_range"], arguments["clip_range_high"])
    for name in ("exhaustive", "train_continuations", "leave_one_out", "dynamic_sampling"):
        if not isinstance(arguments[name], bool | np.bool_):
            raise ValueError(f"`{name}` must be True or False, got {name}={arguments[name]!r}")
    for name in ("exhaustive", "train_continuations"):
        if arguments[name] and arguments["group_mode"] != "state":
            raise ValueError(f"`{name}=True` is about the members of a branched state: it needs group_mode='state'")
    if arguments["reward_function"] is not None:
        # Resolve import paths and check the weights now: a typo fails here, not after the first rollout
        RewardModel(arguments["reward_function"], arguments["reward_weights"])
    elif arguments["reward_weights"] is not None:
        raise ValueError("`reward_weights` weighs a list of reward functions, but `reward_function` is None")


def warn_on_batch_size(model: "GRPO") -> None:
    """Warn, as PPO does, when a minibatch is larger than a rollout: every epoch is then one full-batch update."""
    samples = model.n_steps * model.n_envs
    if model.group_mode == "state":
        group_size = model.action_space.n if model.exhaustive else model.group_size  # type: ignore[attr-defined]
        samples = max(1, int(samples * model.branch_fraction)) * int(group_size)
    if model.batch_size > samples:
        warnings.warn(
            f"`batch_size`={model.batch_size} is larger than a rollout (about {samples} samples with n_steps="
            f"{model.n_steps}, n_envs={model.n_envs}): each epoch is one full-batch update. Lower `batch_size` or "
            "raise `n_steps`.",
            stacklevel=3,
        )


def check_spaces(action_space: spaces.Space, exhaustive: bool) -> None:
    """:param action_space: The env's action space"""
    if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
        raise ValueError(
            f"GRPO does not support the action space {action_space}: supported are "
            f"{', '.join(s.__name__ for s in SUPPORTED_ACTION_SPACES)}"
        )
    if exhaustive and not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"`exhaustive=True` enumerates a Discrete action space, got {action_space}: use exhaustive=False")


def check_model_file(path: str | pathlib.Path | io.BufferedIOBase, custom_objects: dict[str, Any] | None) -> None:
    """
    Read a saved model as SB3's ``load`` does, and turn whatever the reading raises (but a missing file) into a
    ``ValueError`` that names the file: a truncated zip otherwise fails with SB3's ``AssertionError: No data found in
    the saved file``.

    :param path: The model file (or file-like), as given to ``load``
    :param custom_objects: ``load``'s objects that replace saved ones (not deserialized)
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # load, which reads it again, warns about what it finds
            data, params, _ = load_from_zip_file(path, device="cpu", custom_objects=custom_objects)
        if data is None or params is None:
            raise ValueError(f"no {'data' if data is None else 'parameters'} in the archive")
    except FileNotFoundError:
        raise  # SB3's error names the file, and says what is wrong
    except Exception as error:
        name = path if isinstance(path, str | pathlib.Path) else getattr(path, "name", path)  # an open file's name
        raise ValueError(
            f"{name} is not a readable model ({type(error).__name__}: {error}): the file may be truncated (an "
            "interrupted save or copy) or not saved by `save()`. Save or copy it again, or load another file (e.g. a "
            "checkpoint)."
        ) from error


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


def _check_number(name: str, value: Any, condition: str, valid: Any) -> None:
    is_number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or not valid(value):
        raise ValueError(f"`{name}` must be {condition}, got {name}={value!r}")


def _check_schedule(name: str, value: Any) -> float | None:
    """A number (finite, > 0), a callable, or a ``lin_`` string; returns the initial value when known."""
    schedule = parse_schedule(name, value)
    if callable(schedule):
        return None
    _check_number(name, schedule, "> 0 (a number, a schedule or 'lin_<initial>')", lambda x: x > 0)
    return float(schedule)


def _check_clip_ranges(low: Any, high: Any) -> None:
    low_value = _check_schedule("clip_range", low)
    if high is None:
        return
    high_value = _check_schedule("clip_range_high", high)
    if low_value is not None and high_value is not None and high_value < low_value:
        raise ValueError(
            f"`clip_range_high` must be >= `clip_range` (DAPO's clip-higher), got clip_range_high={high!r} < "
            f"clip_range={low!r}"
        )
