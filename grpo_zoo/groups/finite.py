"""Non-finite values stop a rollout where they enter it, with the env and the step that produced them."""

from collections.abc import Callable
from typing import Any

import numpy as np


def check_finite(what: str, values: Any, where: Callable[[int], str]) -> None:
    """
    Raise a ``ValueError`` at the first non-finite value of a batch the env returned: a NaN reward would otherwise
    surface as a NaN loss, blamed on the learning rate. One vectorized check per batch (and per key of a dict).

    :param what: What the values are: "reward" or "observation"
    :param values: A batch, [B, ...] (an array, or a dict of arrays); integer arrays (images) are always finite
    :param where: Where row i of the batch comes from, e.g. ``"for env 1 at rollout step 7"``
    """
    batches = values.items() if isinstance(values, dict) else [(None, values)]
    for key, batch in batches:
        batch = np.asarray(batch)
        if batch.dtype.kind not in "fc" or np.isfinite(batch).all():
            continue
        rows = batch.reshape(len(batch), -1)  # [B, values per row]
        row, column = np.argwhere(~np.isfinite(rows))[0]
        value = rows[row, column]
        name = what if key is None else f"{what} (key {key!r})"
        use = "GRPO cannot rank group members on it" if what == "reward" else "the policy cannot act on it"
        raise ValueError(
            f"the env returned a non-finite {name}, {value}, {where(int(row))}: {use}. Fix the env (a division by zero, an "
            "overflow, a state that left its valid range), or replace such values in a gymnasium wrapper"
        )


def at_rollout_step(t: int) -> Callable[[int], str]:
    """Where a real step's row comes from (its env), for error messages."""
    return lambda env: f"for env {env} at rollout step {t}"
