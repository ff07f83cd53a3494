"""
Registration of GRPO with rl-zoo3 2.9.x, called by :mod:`grpo_zoo.zoo.hook` right after each module executes.

- ``rl_zoo3.utils.ALGOS["grpo"] = GRPO`` (``train``/``enjoy``/``record_video``/``push_to_hub`` take their
  ``--algo`` choices from it);
- ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` for ``-optimize``
  (``rl_zoo3.exp_manager`` imports the same dict objects by name, so filling them in place is enough);
- :func:`grpo_hyperparams_path`: the ``hyperparams/grpo.yml`` that ``--algo grpo`` reads.

What grpo-zoo changes in rl-zoo3's code is in :mod:`grpo_zoo.zoo.patches`. Every function is idempotent.
Imports: the standard library at import time; GRPO and :mod:`grpo_zoo.zoo.sampler` when registering.
"""

from pathlib import Path
from types import ModuleType

ALGO_NAME = "grpo"


def grpo_hyperparams_path() -> Path:
    """
    :return: ``grpo.yml``: shipped in the wheel as ``grpo_zoo/hyperparams/grpo.yml``,
        at the repository root (``hyperparams/grpo.yml``) in a checkout or an editable install
    """
    package_dir = Path(__file__).resolve().parent.parent
    candidates = (package_dir / "hyperparams" / "grpo.yml", package_dir.parent / "hyperparams" / "grpo.yml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    # Not found: return the installed location, so rl_zoo3's error message names a meaningful path
    return candidates[0]


def register_algo(utils: ModuleType) -> None:
    """
    :param utils: ``rl_zoo3.utils``
    """
    from grpo_zoo import GRPO

    utils.ALGOS[ALGO_NAME] = GRPO


def register_sampler(hyperparams_opt: ModuleType) -> None:
    """
    :param hyperparams_opt: ``rl_zoo3.hyperparams_opt``
    """
    from grpo_zoo.zoo import sampler

    hyperparams_opt.HYPERPARAMS_SAMPLER[ALGO_NAME] = sampler.sample_grpo_params
    hyperparams_opt.HYPERPARAMS_CONVERTER[ALGO_NAME] = sampler.convert_grpo_params
