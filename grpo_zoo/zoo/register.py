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

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

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


def zoo_entry_key(entries: Mapping[str, Any], env_id: str) -> str | None:
    """
    The key of the YAML entry the zoo trains ``env_id`` with, as ``rl_zoo3.exp_manager`` chooses it: the env's own,
    else ``atari`` for an ALE env, else ``default``; None if there is none.
    """
    if env_id in entries:
        return env_id
    if "atari" in entries and _is_atari(env_id):
        return "atari"
    return "default" if "default" in entries else None


def _is_atari(env_id: str) -> bool:
    """rl-zoo3's test (``ExperimentManager.is_atari``): the env is made by ALE's ``AtariEnv``."""
    import gymnasium as gym

    spec = gym.envs.registry.get(env_id)
    return spec is not None and "AtariEnv" in str(spec.entry_point)


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
