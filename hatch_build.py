"""Hatch build hook: ship ``hyperparams/`` inside plain wheels as ``grpo_zoo/hyperparams/``."""

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        # version is "standard" for `pip install .` and "editable" for `pip install -e .`:
        # an editable install finds hyperparams/ at the repository root (grpo_zoo.zoo.register.grpo_hyperparams_path)
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"]["hyperparams"] = "grpo_zoo/hyperparams"
