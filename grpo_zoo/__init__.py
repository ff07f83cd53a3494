"""grpo-zoo: Group Relative Policy Optimization for Stable-Baselines3 and the RL Baselines3 Zoo."""

import os
from typing import TYPE_CHECKING, Any

# Read version from file
version_file = os.path.join(os.path.dirname(__file__), "version.txt")
with open(version_file) as file_handler:
    __version__ = file_handler.read().strip()

if TYPE_CHECKING:
    from grpo_zoo.grpo import GRPO


def __getattr__(name: str) -> Any:
    # Lazy import: this package is imported at interpreter start by the zoo hook,
    # which must not pull in torch or stable-baselines3.
    if name == "GRPO":
        from grpo_zoo.grpo import GRPO

        return GRPO
    raise AttributeError(f"module 'grpo_zoo' has no attribute {name!r}")


__all__ = ["GRPO", "__version__"]
