"""GRPO, the algorithm: its class and policy aliases (``from grpo_zoo.grpo import GRPO``)."""

from grpo_zoo.grpo.grpo import GRPO
from grpo_zoo.grpo.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["GRPO", "CnnPolicy", "MlpPolicy", "MultiInputPolicy"]
