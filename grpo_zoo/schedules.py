"""
The zoo's schedule strings (``"lin_0.2"``), parsed in one place: GRPO's arguments the zoo does not preprocess
(``clip_range_high``), the search space's converter (:mod:`grpo_zoo.zoo.sampler`) and the tuner's YAML report.

Standard library at import time: SB3 is imported when a schedule is built, so the search space stays light.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stable_baselines3.common.type_aliases import Schedule

LINEAR_PREFIX = "lin_"


def _linear_initial(name: str, value: str) -> float:
    """:return: ``<initial>`` of ``"lin_<initial>"``; a ``ValueError`` naming the parameter for any other string"""
    try:
        if not value.startswith(LINEAR_PREFIX):
            raise ValueError(value)
        return float(value[len(LINEAR_PREFIX) :])
    except ValueError:
        raise ValueError(
            f"`{name}` must be a number, a schedule or a linear schedule string like 'lin_0.2', got {name}={value!r}"
        ) from None


def parse_schedule(name: str, value: Any) -> "float | Schedule":
    """
    A float, a callable schedule, or ``"lin_<initial>"``: ``progress_remaining * initial``, as rl-zoo3's
    ``linear_schedule`` (SB3's picklable ``LinearSchedule`` with the same values).

    :param name: the argument's name, for the error message
    :param value: what the user gave
    :return: the value, with a ``lin_`` string turned into a schedule
    """
    if not isinstance(value, str):
        return value
    initial = _linear_initial(name, value)
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(start=initial, end=0.0, end_fraction=1.0)


def initial_value(value: Any, name: str = "value") -> float:
    """
    :param value: a number, a callable schedule or a ``"lin_<initial>"`` string
    :param name: the argument's name, for the error message
    :return: its initial value (e.g. to offset clip-higher from a scheduled ``clip_range``)
    """
    if isinstance(value, str):
        return _linear_initial(name, value)
    return float(value(1.0)) if callable(value) else float(value)


def linear_schedule_string(initial: float, significant_digits: int | None = None) -> str:
    """
    :param initial: the value at the start of training (the schedule goes linearly to 0)
    :param significant_digits: round the initial value (None: as ``str(initial)``)
    :return: the zoo's string for it, e.g. ``"lin_0.001"``
    """
    text = str(initial) if significant_digits is None else f"{float(initial):.{significant_digits}g}"
    return f"{LINEAR_PREFIX}{text}"
