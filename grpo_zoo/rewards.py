"""Reward functions: resolve import paths, check what they return, combine weighted terms, feed them tensors."""

import copy
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from grpo_zoo.groups.batches import map_obs, stack, take

RewardFn = Callable[[th.Tensor, th.Tensor, th.Tensor], th.Tensor]
RewardSpec = str | RewardFn | None | Sequence[str | RewardFn]
# Where row i of a batch comes from, for error messages: e.g. "for env 1 at rollout step 7"
Where = Callable[[int], str]


def resolve_reward_fn(spec: str | RewardFn) -> RewardFn:
    """
    Turn ``"package.module:function"`` into the function it names; a callable is returned as is.

    :param spec: Import path or callable
    :return: The reward function
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"`reward_function` must be a callable or an import path 'package.module:function', got {spec!r}")
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise _bad_format(spec)
    try:
        target = pkgutil.resolve_name(spec)
    except ImportError as e:
        raise ValueError(
            f"`reward_function` {spec!r}: cannot import module {module_name!r} ({e}). "
            "Check the spelling and that the module is on the Python path."
        ) from e
    except AttributeError as e:
        if module_name not in sys.modules:  # raised while importing the module, not by a missing attribute
            raise
        raise ValueError(f"`reward_function` {spec!r}: module {module_name!r} has no attribute {attribute!r}") from e
    except ValueError as e:
        if str(e) != f"invalid format: {spec!r}":  # raised while importing the module
            raise
        raise _bad_format(spec) from e  # names that are not dotted identifiers
    if not callable(target):
        raise ValueError(f"`reward_function` {spec!r} resolves to {type(target).__name__}, which is not callable")
    return target


def _bad_format(spec: str) -> ValueError:
    return ValueError(
        f"`reward_function` import path must look like 'package.module:function', got {spec!r} "
        "(for example 'reward_fns.cartpole:reward')"
    )


def import_path_of(fn: Any) -> str | None:
    """
    The import path that resolves back to ``fn``, or None (lambdas, closures, functions of ``__main__``).

    Saved models store this string instead of pickling the function, so that they load wherever its module imports
    (SB3 pickles its schedules, and made them classes instead of lambdas so that saved files load elsewhere).
    """
    if isinstance(fn, str):
        return fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    path = f"{module}:{qualname}"
    try:
        return path if resolve_reward_fn(path) is fn else None
    except ValueError:
        return None


def describe(fn: Any) -> str:
    """A short name for error messages."""
    return import_path_of(fn) or str(getattr(fn, "__qualname__", repr(fn)))


class RewardModel:
    """
    The reward used to score group members: a weighted sum of reward functions ``fn(state, action, next_state)``.

    :param specs: One reward function (callable or import path) or a list of them
    :param weights: One weight per function (default: all 1)
    """

    def __init__(self, specs: RewardSpec, weights: Sequence[float] | None = None):
        spec_list = reward_specs(specs)
        if weights is None:
            weights = [1.0] * len(spec_list)
        if isinstance(weights, str) or not isinstance(weights, Sequence):
            raise ValueError(f"`reward_weights` must be a list of numbers, one per reward function, got {weights!r}")
        weights = list(weights)
        if len(weights) != len(spec_list):
            raise ValueError(
                f"`reward_weights` must have one weight per reward function: got {len(weights)} weights "
                f"for {len(spec_list)} functions"
            )
        if not all(isinstance(w, int | float) and np.isfinite(w) for w in weights):
            raise ValueError(f"`reward_weights` must be finite numbers, got {weights}")
        self.functions = [resolve_reward_fn(spec) for spec in spec_list]
        self.weights = [float(w) for w in weights]

    def __call__(self, state: Any, action: th.Tensor, next_state: Any, where: Where | None = None) -> np.ndarray:
        """
        :param state: Batched observations [B, *obs_shape] (tensor, or dict of tensors)
        :param action: Batched actions [B, 1] (Discrete) or [B, action_dim]
        :param next_state: Batched next observations, like ``state``
        :param where: Where row i of the batch comes from, for the error of a non-finite reward
        :return: Rewards, shape (B,), float64
        """
        batch_size = action.shape[0]
        total = np.zeros(batch_size, dtype=np.float64)
        for fn, weight in zip(self.functions, self.weights, strict=True):
            with th.no_grad():
                value = fn(state, action, next_state)
            total += weight * check_reward(fn, value, batch_size, where)
        return total

    def score(self, state: Any, env_actions: np.ndarray, next_state: Any, where: Where | None = None) -> np.ndarray:
        """
        The reward of a batch of transitions given as numpy arrays, as the env returned and received them.

        :param state: Observations [B, *obs_shape] in the env's own units (array, or dict of arrays)
        :param env_actions: Actions as applied by the env [B, *action_shape]
        :param next_state: Next observations, like ``state``
        :param where: Where row i of the batch comes from (e.g. ``"for env 1 at rollout step 7"``), for the error of
            a non-finite reward
        :return: Rewards, shape (B,), float64
        """
        return self(obs_tensor(state), action_tensor(env_actions), obs_tensor(next_state), where)

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Call the reward functions once on a small batch sampled from the spaces, so a wrong shape fails now."""
        observation_space, action_space = copy.deepcopy(observation_space), copy.deepcopy(action_space)
        observation_space.seed(0)
        action_space.seed(0)
        states = stack([observation_space.sample() for _ in range(4)])
        self.score(take(states, slice(2)), np.stack([action_space.sample() for _ in range(2)]), take(states, slice(2, None)))


def reward_specs(specs: RewardSpec) -> list[str | RewardFn]:
    """
    :param specs: ``reward_function`` as the user gave it
    :return: the list of reward functions (callables or import paths) it names
    """
    if isinstance(specs, str) or callable(specs):
        return [specs]
    if not isinstance(specs, Sequence) or len(specs) == 0:
        raise ValueError(
            "`reward_function` must be a callable fn(state, action, next_state), an import path "
            f"'package.module:function', a non-empty list of these, or None for the env reward, got {specs!r}"
        )
    return list(specs)


def obs_tensor(obs: Any) -> Any:
    """Observations as reward functions receive them: float32 tensors (a dict of them for Dict spaces)."""
    return map_obs(lambda value: th.as_tensor(np.asarray(value, dtype=np.float32)), obs)


def action_tensor(env_actions: np.ndarray) -> th.Tensor:
    """Actions as reward functions receive them: float32, [B, 1] for Discrete, [B, action_dim] otherwise."""
    return th.as_tensor(np.asarray(env_actions, dtype=np.float32).reshape(len(env_actions), -1))


def check_reward(fn: Any, value: Any, batch_size: int, where: Where | None = None) -> np.ndarray:
    """
    Check that a reward function returned a finite ``[B, 1]`` (or ``[B]``) tensor.

    :param where: Where row i of the batch comes from, for the error of a non-finite value
    :return: The rewards as a float64 array of shape (B,)
    """
    if not isinstance(value, th.Tensor):
        raise ValueError(
            f"reward function {describe(fn)} must return a torch.Tensor of shape [{batch_size}, 1], got {type(value).__name__}"
        )
    if tuple(value.shape) not in ((batch_size, 1), (batch_size,)):
        raise ValueError(
            f"reward function {describe(fn)} returned shape {list(value.shape)} for a batch of {batch_size}: "
            f"expected [{batch_size}, 1] (or [{batch_size}]). Reduce over the state dimensions and keep the batch "
            "dimension, e.g. `return reward.unsqueeze(-1)`."
        )
    rewards = value.detach().reshape(batch_size).to(th.float64).cpu().numpy()
    if not np.all(np.isfinite(rewards)):
        bad = int(np.flatnonzero(~np.isfinite(rewards))[0])
        place = f"at batch index {bad}" if where is None else where(bad)
        raise ValueError(
            f"reward function {describe(fn)} returned a non-finite value ({rewards[bad]}) {place}: "
            "rewards must be finite (check for division by zero or log of a non-positive number)"
        )
    return rewards
