"""
Registration of GRPO with rl-zoo3 2.9.x, called by :mod:`grpo_zoo.zoo.hook` right after each module executes.

- ``rl_zoo3.utils.ALGOS["grpo"] = GRPO`` (``train``/``enjoy``/``record_video``/``push_to_hub`` take their
  ``--algo`` choices from it);
- ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` for ``-optimize``
  (``rl_zoo3.exp_manager`` imports the same dict objects by name, so filling them in place is enough);
- ``ExperimentManager``: ``--algo grpo`` without ``-conf`` reads grpo-zoo's ``hyperparams/grpo.yml``, and a
  ``ValueError`` raised while setting up a grpo experiment (e.g. a reward function path that does not import)
  ends the command with one ``error: ...`` line and exit code 2 instead of a stack trace;
- ``huggingface_sb3.push_to_hub.generate_metadata``: rl-zoo3 2.9.2's ``push_to_hub`` imports it, but
  sb3-team-hf-integration 3.2 renamed it ``_generate_metadata`` (returning ``ModelCardData``, not a dict),
  so ``python -m rl_zoo3.push_to_hub`` fails to import for every algorithm. A compatible alias is added.

Every function is idempotent.
"""

import functools
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ALGO_NAME = "grpo"
# Set on every function this module wraps, so that a second registration is a no-op
_PATCHED = "__grpo_zoo_patched__"


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


def patch_exp_manager(exp_manager: ModuleType) -> None:
    """
    :param exp_manager: ``rl_zoo3.exp_manager``
    """
    manager_class = exp_manager.ExperimentManager
    _patch_init(manager_class)
    _patch_setup_experiment(manager_class)

    from grpo_zoo.zoo import sampler

    sampler.patch_exp_manager(manager_class)


def _patch_init(manager_class: Any) -> None:
    original_init = manager_class.__init__
    if getattr(original_init, _PATCHED, False):
        return
    # rl_zoo3 2.9: ``self.config = config or str(default_path / f"hyperparams/{self.algo}.yml")``
    signature = inspect.signature(original_init)
    if "config" not in signature.parameters or "algo" not in signature.parameters:
        raise TypeError(f"unexpected ExperimentManager.__init__{signature}")

    @functools.wraps(original_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        arguments = signature.bind(self, *args, **kwargs).arguments
        if arguments["algo"] == ALGO_NAME and not arguments.get("config"):
            self.config = str(grpo_hyperparams_path())

    setattr(__init__, _PATCHED, True)
    manager_class.__init__ = __init__


def _patch_setup_experiment(manager_class: Any) -> None:
    original_setup = manager_class.setup_experiment
    if getattr(original_setup, _PATCHED, False):
        return

    @functools.wraps(original_setup)
    def setup_experiment(self: Any) -> Any:
        try:
            return original_setup(self)
        except ValueError as error:
            # Bad hyperparameters (GRPO raises ValueError naming the parameter and the fix):
            # one clear line, not a stack trace. ``--verbose 2`` keeps the traceback.
            if self.algo != ALGO_NAME or self.verbose > 1:
                raise
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    setattr(setup_experiment, _PATCHED, True)
    manager_class.setup_experiment = setup_experiment


def patch_huggingface_sb3(push_to_hub: ModuleType) -> None:
    """
    :param push_to_hub: ``huggingface_sb3.push_to_hub``
    """
    if hasattr(push_to_hub, "generate_metadata") or not hasattr(push_to_hub, "_generate_metadata"):
        return
    generate = push_to_hub._generate_metadata

    @functools.wraps(generate)
    def generate_metadata(model_name: str, env_id: str, mean_reward: float, std_reward: float) -> dict[str, Any]:
        # sb3-team-hf-integration < 3.2 returned a dict, which rl_zoo3 passes to huggingface_hub's metadata_save
        metadata = generate(model_name, env_id, mean_reward, std_reward)
        return metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata)

    push_to_hub.generate_metadata = generate_metadata  # type: ignore[attr-defined]
