"""The zoo's schedule strings (``"lin_0.2"``) for the GRPO arguments the zoo does not preprocess."""

from typing import Any

from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule

LINEAR_PREFIX = "lin_"


def parse_schedule(name: str, value: Any) -> float | Schedule:
    """
    A float, a callable schedule, or ``"lin_<initial>"``: ``progress_remaining * initial``, as rl-zoo3's
    ``linear_schedule`` (SB3's picklable ``LinearSchedule`` with the same values).

    :param name: the argument's name, for the error message
    :param value: what the user gave
    :return: the value, with a ``lin_`` string turned into a schedule
    """
    if not isinstance(value, str):
        return value
    initial = value[len(LINEAR_PREFIX) :] if value.startswith(LINEAR_PREFIX) else None
    try:
        return LinearSchedule(start=float(initial), end=0.0, end_fraction=1.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a number, a schedule or a linear schedule string like 'lin_0.2', got {name}={value!r}"
        ) from None


def initial_value(value: Any) -> float:
    """:return: the initial value of a number or of a ``"lin_<initial>"`` string (e.g. to offset clip-higher)"""
    schedule = parse_schedule("value", value)
    return float(schedule(1.0)) if callable(schedule) else float(schedule)
