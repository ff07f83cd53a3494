"""Optuna tuning of GRPO: storages, multi-seed objective, worker processes and reports (CLI: ``python -m grpo_zoo.tune``)."""
