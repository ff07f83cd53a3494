"""GRPO-vs-PPO benchmark harness (``python -m grpo_zoo.benchmark``)."""

from grpo_zoo.benchmarking.config import grpo_hyperparams_path, make_variant
from grpo_zoo.benchmarking.report import threshold_metrics

__all__ = ["grpo_hyperparams_path", "make_variant", "threshold_metrics"]
