"""
rl-zoo3 integration: ``--algo grpo`` in the unmodified zoo commands.

- :mod:`grpo_zoo.zoo.hook` runs at interpreter start (from ``grpo_zoo_hook.pth``), stdlib only;
- :mod:`grpo_zoo.zoo.register` registers GRPO, its sampler and ``hyperparams/grpo.yml`` once rl_zoo3 is imported;
- :mod:`grpo_zoo.zoo.patches` lists every change grpo-zoo makes to code not its own, and holds those to rl-zoo3's
  (``ExperimentManager``, ``push_to_hub``);
- :mod:`grpo_zoo.zoo.sampler` is GRPO's Optuna search space, and nothing else;
- :mod:`grpo_zoo.zoo.budget` stops a trial at a budget of simulator steps (real + probe steps) and counts its
  CPU seconds (``-optimize`` and ``grpo_zoo.tune``);
- :mod:`grpo_zoo.zoo.studies` opens ``--storage`` and plots studies (``-optimize`` and ``grpo_zoo.tune``);
- :mod:`grpo_zoo.zoo.ffmpeg` is ``record_training``'s ``ffmpeg`` when the system has none;
- :mod:`grpo_zoo.zoo.run` runs a zoo script with the hook installed (``python -m grpo_zoo.train``).

Imports point down: ``grpo_zoo.tune`` -> ``grpo_zoo.tuning`` -> ``grpo_zoo.zoo`` -> ``grpo_zoo.schedules``, GRPO;
nothing here imports ``grpo_zoo.tuning`` (tests/test_zoo_layering.py). Nothing is imported by this ``__init__``:
this package is imported at every interpreter start.
"""
