"""
rl-zoo3 integration: ``--algo grpo`` in the unmodified zoo commands.

- :mod:`grpo_zoo.zoo.hook` runs at interpreter start (from ``grpo_zoo_hook.pth``), stdlib only;
- :mod:`grpo_zoo.zoo.register` does the registration once rl_zoo3 is imported;
- :mod:`grpo_zoo.zoo.sampler` is GRPO's Optuna search space;
- :mod:`grpo_zoo.zoo.run` runs a zoo script with the hook installed (``python -m grpo_zoo.train``).

Nothing is imported here: this package is imported at every interpreter start.
"""
