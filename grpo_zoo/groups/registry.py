"""The group mechanisms GRPO knows, read by GRPO, its argument checks, the Optuna sampler and the docs."""

from dataclasses import dataclass
from typing import Any

from grpo_zoo.groups.base import GroupCollector
from grpo_zoo.groups.episode import EpisodeGroups
from grpo_zoo.groups.modes import MODES
from grpo_zoo.groups.state import StateGroups
from grpo_zoo.groups.time_bins import TimeBins


@dataclass(frozen=True)
class GroupMode:
    """
    :param collector: The collector class, built from ``arguments`` and ``seed``
    :param arguments: The GRPO arguments this mechanism reads (the others do not change it)
    """

    collector: type
    arguments: tuple[str, ...]


# The arguments and summaries are in grpo_zoo.groups.modes (torch-free, also read by the sampler): only the
# collector classes are added here
_COLLECTORS: dict[str, type] = {"state": StateGroups, "episode": EpisodeGroups, "time": TimeBins}
GROUP_MODES: dict[str, GroupMode] = {name: GroupMode(_COLLECTORS[name], spec.arguments) for name, spec in MODES.items()}


def make_collector(group_mode: str, arguments: dict[str, Any], seed: int | None) -> GroupCollector:
    """
    :param group_mode: A key of ``GROUP_MODES``
    :param arguments: GRPO's arguments (only those the mode reads are passed on; a missing one, e.g. in a model
        saved by an older version, takes the collector's default)
    :param seed: Seed of the mechanism's own random choices
    """
    mode = GROUP_MODES[group_mode]
    return mode.collector(**{name: arguments[name] for name in mode.arguments if name in arguments}, seed=seed)
