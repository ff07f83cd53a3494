"""
Every change grpo-zoo makes to rl-zoo3 2.9.x code, applied by :mod:`grpo_zoo.zoo.hook` as the zoo's modules load.

``rl_zoo3.exp_manager.ExperimentManager`` (:func:`patch_exp_manager`), for ``--algo grpo`` only:

- ``__init__``: without ``-conf``, read grpo-zoo's ``hyperparams/grpo.yml``;
- ``setup_experiment``: a ``ValueError`` (bad hyperparameters: GRPO names the parameter and the fix; missing
  hyperparameters) ends the command with one ``error: ...`` line and exit code 1, the code every zoo algorithm
  exits with (``--verbose 2`` keeps the traceback);
- ``objective``: the GRPO sampler sees the YAML entry (group mode, ``-params`` frozen keys, budget, the env's
  number of actions) and a combination GRPO rejects prunes the trial with the reason; the trial records what it
  spent (user attributes ``sim_steps``, ``real_steps``, ``cpu_seconds``: CPU seconds of training, evaluations
  excluded, of the trial's thread when ``--n-jobs`` > 1);
- ``read_hyperparameters``: ``--trial-id 0`` loads trial 0 (the zoo tests the id as a bool); ``-params group_mode:...``
  that switches the entry's group mode drops the entry's keys only the other modes read, with one warning naming them
  (keys given with ``-params`` are kept);
- ``hyperparameters_optimization``: the budget of a trial (``-n``, else the YAML ``n_timesteps``) is counted in
  simulator steps, real + probe steps: ``--algo grpo`` is :class:`grpo_zoo.zoo.budget.SimulatorBudgetGRPO`
  while it runs (training stops once ``num_timesteps + num_probe_steps`` reaches the budget, evaluations are
  spaced over it); an unusable ``--storage`` is one ``error: ...`` line (exit code 1); RDB storages get
  heartbeats (a trial of a killed worker is retried); a study without a complete trial still writes its report;
  plots are PNG files (the zoo's plotly figures need a browser).

``huggingface_sb3.push_to_hub.generate_metadata`` (:func:`patch_huggingface_sb3`): rl-zoo3 2.9.2's ``push_to_hub``
imports it, but sb3-team-hf-integration 3.2 renamed it ``_generate_metadata`` (returning ``ModelCardData``, not a
dict), so ``python -m rl_zoo3.push_to_hub`` fails to import for every algorithm. A compatible alias is added.

Not a change of rl-zoo3's code, so not here: before ``rl_zoo3.record_training`` runs, the hook puts
imageio-ffmpeg's binary on ``PATH`` when there is no system ``ffmpeg`` (:mod:`grpo_zoo.zoo.ffmpeg`).

Every function is idempotent and leaves the other algorithms alone. Imports point down: this module uses
:mod:`grpo_zoo.zoo.sampler`, :mod:`grpo_zoo.zoo.studies`, :mod:`grpo_zoo.zoo.register` and (once a study
runs, it imports torch) :mod:`grpo_zoo.zoo.budget`, never ``grpo_zoo.tuning``; rl_zoo3 is only touched through
the objects it is given.
"""

import functools
import inspect
import os
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import optuna

from grpo_zoo.groups.modes import MODES, arguments_of_other_modes
from grpo_zoo.zoo import sampler
from grpo_zoo.zoo.register import ALGO_NAME, grpo_hyperparams_path
from grpo_zoo.zoo.studies import StorageError, make_storage, storage_errors, write_plots

# Set on every function this module wraps, so that a second registration is a no-op
_PATCHED = "__grpo_zoo_patched__"
# Exit code of a zoo command that fails (an uncaught exception): the same for GRPO's own errors
ERROR_EXIT_CODE = 1


def exit_with_error(message: object) -> NoReturn:
    """
    End a zoo command with one ``error: ...`` line on stderr and the zoo's exit code.

    :param message: what went wrong and the fix
    """
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(ERROR_EXIT_CODE)


def _wrap(owner: Any, name: str, make_wrapper: Any) -> None:
    """Replace ``owner.<name>`` by ``make_wrapper(original)``, once."""
    original = getattr(owner, name)
    if getattr(original, _PATCHED, False):
        return
    wrapper = functools.wraps(original)(make_wrapper(original))
    setattr(wrapper, _PATCHED, True)
    setattr(owner, name, wrapper)


def patch_exp_manager(exp_manager: ModuleType) -> None:
    """
    :param exp_manager: ``rl_zoo3.exp_manager``
    """
    patch_experiment_manager(exp_manager.ExperimentManager)


def patch_experiment_manager(manager_class: Any) -> None:
    """
    :param manager_class: ``rl_zoo3.exp_manager.ExperimentManager`` (or a class with the same methods)
    """
    # rl_zoo3 2.9: ``self.config = config or str(default_path / f"hyperparams/{self.algo}.yml")``
    signature = inspect.signature(manager_class.__init__)
    if "config" not in signature.parameters or "algo" not in signature.parameters:
        raise TypeError(f"unexpected ExperimentManager.__init__{signature}")
    _wrap(manager_class, "__init__", functools.partial(_init, signature))
    _wrap(manager_class, "setup_experiment", _setup_experiment)
    _wrap(manager_class, "objective", _objective)
    _wrap(manager_class, "read_hyperparameters", _read_hyperparameters)
    _wrap(manager_class, "hyperparameters_optimization", _hyperparameters_optimization)


def _init(signature: inspect.Signature, original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        arguments = signature.bind(self, *args, **kwargs).arguments
        if arguments.get("algo") == ALGO_NAME and not arguments.get("config"):
            self.config = str(grpo_hyperparams_path())

    return __init__


def _setup_experiment(original: Any) -> Any:
    def setup_experiment(self: Any) -> Any:
        try:
            return original(self)
        except ValueError as error:
            # Bad or missing hyperparameters: one clear line, not a stack trace. ``--verbose 2`` keeps the traceback.
            if self.algo != ALGO_NAME or self.verbose > 1:
                raise
            exit_with_error(error)

    return setup_experiment


def _objective(original: Any) -> Any:
    def objective(self: Any, trial: optuna.Trial) -> float:
        if self.algo != ALGO_NAME:
            return original(self, trial)
        from grpo_zoo.zoo.budget import trial_budget

        # The GRPO sampler sees the YAML entry, the frozen keys and the budget
        sampler.set_context(sampler.sampler_context(self))
        # Trials in threads (--n-jobs): the CPU time of this thread only
        clock = time.thread_time if getattr(self, "n_jobs", 1) > 1 else time.process_time
        try:
            with trial_budget(trial, getattr(self, "n_evaluations", None), clock):
                return original(self, trial)
        except optuna.TrialPruned as e:
            # Keep why the zoo pruned it (e.g. the ValueError of a diverging run)
            reason = str(e) or (repr(e.__cause__) if e.__cause__ is not None else "pruned by the pruner")
            trial.set_user_attr("pruned_reason", reason)
            raise
        except ValueError as e:
            # GRPO rejected the combination at construction: prune with the reason, the study goes on
            trial.set_user_attr("pruned_reason", repr(e))
            print(f"Trial {trial.number} pruned: invalid hyperparameters: {e}")
            raise optuna.TrialPruned(f"invalid hyperparameters: {e}") from e
        finally:
            sampler.set_context({})
            if getattr(self, "verbose", 0) > 0 and "sim_steps" in trial.user_attrs:
                cost = trial.user_attrs
                print(
                    f"Trial {trial.number}: {cost['sim_steps']} simulator steps ({cost['real_steps']} real) "
                    f"of a budget of {self.n_timesteps}, {cost['cpu_seconds']:.1f} CPU s"
                )

    return objective


def _read_hyperparameters(original: Any) -> Any:
    def read_hyperparameters(self: Any) -> Any:
        if self.algo != ALGO_NAME:
            return original(self)
        # The zoo loads ``--trial-id`` only when it is truthy: trial 0 was silently ignored
        if self.trial_id == 0 and self.storage and self.study_name:
            study_hyperparams = self.load_trial(self.storage, self.study_name, self.trial_id)
            custom = self.custom_hyperparams
            self.custom_hyperparams, self.trial_id = {**study_hyperparams, **(custom or {})}, None
            try:
                hyperparams, saved_hyperparams = original(self)
            finally:
                self.custom_hyperparams, self.trial_id = custom, 0
        else:
            hyperparams, saved_hyperparams = original(self)
        _drop_other_mode_keys(self.custom_hyperparams or {}, hyperparams, saved_hyperparams)
        return hyperparams, saved_hyperparams

    return read_hyperparameters


def _drop_other_mode_keys(custom: dict[str, Any], hyperparams: dict[str, Any], saved_hyperparams: dict[str, Any]) -> None:
    """
    ``-params group_mode:...`` switches the entry's group mode: drop the entry's keys that only the other modes read
    (they have no effect, and GRPO refuses some, e.g. ``train_continuations=True`` with episode groups), with one
    warning naming them. Keys given with ``-params`` are kept.

    :param custom: The ``-params`` hyperparameters
    :param hyperparams: The entry with ``-params`` applied (changed in place)
    :param saved_hyperparams: What the zoo saves as ``config.yml`` (changed in place)
    """
    group_mode = custom.get("group_mode")
    if not isinstance(group_mode, str) or group_mode not in MODES:
        return  # no switch, or a mode GRPO names in its own error
    dropped = [key for key in arguments_of_other_modes(group_mode) if key in hyperparams and key not in custom]
    if not dropped:
        return
    for key in dropped:
        hyperparams.pop(key)
        saved_hyperparams.pop(key, None)
    readers = [f"group_mode={name!r}" for name, spec in MODES.items() if set(dropped) & set(spec.arguments)]
    warnings.warn(
        f"-params group_mode:{group_mode!r} switched the entry's group mode: dropped its {', '.join(dropped)}, which "
        f"only {' or '.join(readers)} {'reads' if len(readers) == 1 else 'read'}. To keep one, give it with -params too.",
        stacklevel=3,
    )


def _report_prefix(self: Any) -> str:
    # Same name as rl_zoo3's report
    report_name = (
        f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}_{int(time.time())}"
    )
    return os.path.join(self.log_folder, self.algo, report_name)


def _open_zoo_storage(storage: str) -> Any:
    """
    The zoo's ``--storage``, opened before the zoo does: a ``*.log`` journal file or an RDB URL (with heartbeats).

    :raises StorageError: the storage cannot be used
    """
    if not storage.endswith(".log") and "://" not in storage:
        raise StorageError(
            f"cannot use the Optuna storage `{storage}`: the zoo's --storage is a journal file ending in .log "
            "or a database URL, e.g. --storage logs/grpo/study.log or --storage sqlite:///logs/grpo/study.db"
        )
    return make_storage(storage, heartbeat_interval=60, grace_period=120)


def _hyperparameters_optimization(original: Any) -> Any:
    def hyperparameters_optimization(self: Any) -> None:
        if self.algo != ALGO_NAME:
            return original(self)
        try:
            _optimize(original, self)
        except StorageError as error:
            if self.verbose > 1:
                raise
            exit_with_error(error)

    return hyperparameters_optimization


def _optimize(original: Any, self: Any) -> None:
    """``ExperimentManager.hyperparameters_optimization`` for grpo (see the module docstring)."""
    import rl_zoo3.exp_manager

    from grpo_zoo.zoo.budget import SimulatorBudgetGRPO

    if self.verbose > 0:
        print(f"grpo: the budget of a trial, {self.n_timesteps} steps, counts simulator steps (real + probe steps)")
    storage = _open_zoo_storage(self.storage) if self.storage else None
    studies: list[optuna.Study] = []
    create_study = optuna.create_study

    @functools.wraps(create_study)
    def capture_create_study(*args: Any, **kwargs: Any) -> optuna.Study:
        if storage is None:
            study = create_study(*args, **kwargs)
        else:
            # The storage opened above: for an RDB URL, the same one with heartbeats
            kwargs["storage"] = storage
            with storage_errors(self.storage):
                study = create_study(*args, **kwargs)
        studies.append(study)
        return study

    start = time.time()
    rl_zoo3.exp_manager.optuna.create_study = capture_create_study  # type: ignore[attr-defined]
    # The zoo's objective builds `ALGOS[algo](...)` and calls `learn(n_timesteps)`: for the time of the study,
    # a GRPO whose learn stops at n_timesteps simulator steps (set here, before --n-jobs threads start)
    algos = rl_zoo3.exp_manager.ALGOS
    registered = algos[ALGO_NAME]
    algos[ALGO_NAME] = SimulatorBudgetGRPO
    try:
        original(self)
    except ValueError as e:
        # Every trial pruned: the zoo raises "No trials are completed yet" before writing its report
        if not studies or studies[-1].get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            raise
        prefix = _report_prefix(self)
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        studies[-1].trials_dataframe().to_csv(f"{prefix}.csv")
        print(f"No trial completed ({e}): every trial was pruned, see the user attribute `pruned_reason`.")
        print(f"Writing report to {prefix}.csv")
        return
    finally:
        rl_zoo3.exp_manager.optuna.create_study = create_study  # type: ignore[attr-defined]
        algos[ALGO_NAME] = registered
    if studies and not self.no_optim_plots:
        reports = sorted(Path(self.log_folder, self.algo).glob(f"report_{self.env_name}_*.csv"), key=os.path.getmtime)
        reports = [path for path in reports if os.path.getmtime(path) >= start - 1]
        prefix = str(reports[-1].with_suffix("")) if reports else _report_prefix(self)
        for path in write_plots(studies[-1], prefix):
            print(f"Wrote {path}")


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
