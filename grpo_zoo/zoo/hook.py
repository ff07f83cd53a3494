"""
Start-up hook that registers GRPO with rl-zoo3, run by ``grpo_zoo_hook.pth``.

rl-zoo3 has no plugin API: ``rl_zoo3.train`` builds its ``--algo`` choices from ``rl_zoo3.utils.ALGOS``
before ``--gym-packages`` is imported. A ``.pth`` line in site-packages runs :func:`install` at interpreter
start. It must stay cheap and safe there, so this module only uses the standard library and only adds a
``sys.meta_path`` finder: nothing of rl_zoo3, torch or gymnasium is imported until the program imports
rl_zoo3 itself. Right after each module of ``TARGETS`` has executed, its function (in
:mod:`grpo_zoo.zoo.register` or :mod:`grpo_zoo.zoo.patches`) registers GRPO or patches it; the function of a
module of ``BEFORE`` runs when the module is looked up, before it runs (``python -m`` scripts).

:func:`install` is idempotent (a venv may process ``.pth`` files twice) and never raises: if rl_zoo3 is
missing nothing happens; if it changed, one warning says so and Python carries on.
Set ``GRPO_ZOO_NO_HOOK=1`` to disable the hook (``python -m grpo_zoo.train`` still registers GRPO).
:func:`register_grpo` is the one way grpo-zoo's own programs (the tuner, the benchmark, ``python -m
grpo_zoo.train``) make sure GRPO is registered, with or without the ``.pth`` hook.
"""

import importlib
import os
import sys
from types import ModuleType
from typing import Any

# module -> "grpo_zoo module:function" run with the module right after it executes (in import order)
TARGETS = {
    "rl_zoo3.utils": "grpo_zoo.zoo.register:register_algo",
    "rl_zoo3.hyperparams_opt": "grpo_zoo.zoo.register:register_sampler",
    "rl_zoo3.exp_manager": "grpo_zoo.zoo.patches:patch_exp_manager",
    "huggingface_sb3.push_to_hub": "grpo_zoo.zoo.patches:patch_huggingface_sb3",
}
# module -> "grpo_zoo module:function" run with the module's name when it is looked up, before it runs:
# ``python -m <module>`` executes it as ``__main__``, so nothing can run after it
BEFORE = {
    "rl_zoo3.record_training": "grpo_zoo.zoo.ffmpeg:provide_ffmpeg",
}
# Marker attribute, checked by name so that a reloaded copy of this module is recognised too
_FINDER_MARKER = "_grpo_zoo_finder"
_warned = False


def warn_once(message: str) -> None:
    """
    Print one warning per process, whatever the number of failures.

    :param message: what went wrong and what to do
    """
    global _warned
    if _warned:
        return
    _warned = True
    import warnings

    warnings.warn(f"grpo-zoo: {message}", RuntimeWarning, stacklevel=2)


def run_registration(target: str, module: ModuleType | str) -> None:
    """
    Call the function ``target`` names with ``module``, turning any failure into one warning.

    :param target: ``"grpo_zoo.zoo.register:register_algo"``
    :param module: the rl_zoo3 module that has just executed (``TARGETS``), or its name (``BEFORE``)
    """
    module_name = module if isinstance(module, str) else module.__name__
    try:
        grpo_module, function_name = target.split(":")
        getattr(importlib.import_module(grpo_module), function_name)(module)
    except Exception as error:  # never break the user's import of rl_zoo3
        warn_once(
            f"could not register GRPO with rl_zoo3 ({module_name}: {type(error).__name__}: {error}); "
            "`--algo grpo` may be unavailable. Is rl_zoo3 2.9.x installed?"
        )


class _RegisteringLoader:
    """
    Wrap a loader: execute the module as usual, then run its registration function.

    :param loader: the loader found by the other finders
    :param target: registration function to run after ``exec_module``
    """

    def __init__(self, loader: Any, target: str) -> None:
        self._loader = loader
        self._target = target

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        run_registration(self._target, module)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_code, get_resource_reader, ...: the wrapped loader answers
        return getattr(self._loader, name)


class ZooFinder:
    """Meta path finder that only intercepts the modules of ``TARGETS`` (and sees those of ``BEFORE`` looked up)."""

    _grpo_zoo_finder = True

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in TARGETS:  # the common case, keep it cheap
            if fullname in BEFORE:
                run_registration(BEFORE[fullname], fullname)
            return None
        for finder in sys.meta_path:
            if getattr(finder, _FINDER_MARKER, False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # unusual loader: leave it alone, install() can still patch afterwards
        spec.loader = _RegisteringLoader(spec.loader, TARGETS[fullname])  # type: ignore[assignment]
        return spec


def is_installed() -> bool:
    """:return: whether a zoo finder is on ``sys.meta_path``"""
    return any(getattr(finder, _FINDER_MARKER, False) for finder in sys.meta_path)


def install(force: bool = False) -> None:
    """
    Add the finder (once) and register with the rl_zoo3 modules that are already imported.

    :param force: install even when ``GRPO_ZOO_NO_HOOK`` is set (used by ``python -m grpo_zoo.train``)
    """
    try:
        if not force and os.environ.get("GRPO_ZOO_NO_HOOK", "") not in ("", "0"):
            return
        if not is_installed():
            sys.meta_path.insert(0, ZooFinder())
        for module_name, registration in TARGETS.items():
            module = sys.modules.get(module_name)
            if module is not None:
                run_registration(registration, module)
    except Exception as error:  # a start-up hook must never stop Python from starting
        warn_once(f"start-up hook failed ({type(error).__name__}: {error})")


def register_grpo() -> None:
    """
    Register GRPO with rl_zoo3 now, whether or not the ``.pth`` hook ran (``python -S``, ``GRPO_ZOO_NO_HOOK=1``, a
    program that imported rl_zoo3 first): install the hook and import ``rl_zoo3.exp_manager`` (with
    ``rl_zoo3.utils`` and ``rl_zoo3.hyperparams_opt``), so that ``ALGOS["grpo"]``, GRPO's sampler and the
    ``ExperimentManager`` patches are in place on return. Idempotent.
    """
    install(force=True)
    importlib.import_module("rl_zoo3.exp_manager")
