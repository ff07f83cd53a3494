"""Batches of observations, as arrays or dicts of arrays (numpy only: this runs in env workers too)."""

from collections.abc import Callable
from typing import Any

import numpy as np


def map_obs(fn: Callable[[Any], Any], obs: Any) -> Any:
    """Apply ``fn`` to a batch of observations: to the array, or to each array of a dict (keeping its keys)."""
    if isinstance(obs, dict):
        return {key: fn(value) for key, value in obs.items()}
    return fn(obs)


def take(obs: Any, index: Any) -> Any:
    """Index a batch of observations (array or dict of arrays)."""
    return map_obs(lambda value: value[index], obs)


def stack(observations: list[Any]) -> Any:
    """Stack a list of observations (arrays or dicts) into a batch."""
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


def concatenate(batches: list[Any]) -> Any:
    """Concatenate batches of observations (arrays or dicts) along the first axis."""
    if isinstance(batches[0], dict):
        return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    return np.concatenate(batches)
