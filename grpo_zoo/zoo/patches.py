"""
Every change grpo-zoo makes to code that is not its own, in one list. Each is idempotent and leaves the other
algorithms alone; what rl-zoo3 offers for it (``-conf``, ``ALGOS``, ``HYPERPARAMS_SAMPLER``) is used first.

Registrations, through the zoo's own tables (:mod:`grpo_zoo.zoo.register`, run by :mod:`grpo_zoo.zoo.hook` as
the modules load; :func:`grpo_zoo.zoo.hook.register_grpo` without the ``.pth`` hook):

- ``rl_zoo3.utils.ALGOS["grpo"] = GRPO``; ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER["grpo"]`` and
  ``HYPERPARAMS_CONVERTER["grpo"]`` (the search space, :mod:`grpo_zoo.zoo.sampler`).

``rl_zoo3.exp_manager.ExperimentManager`` (:func:`patch_experiment_manager`), for ``--algo grpo`` only:

- ``__init__``: without ``-conf``, read grpo-zoo's ``hyperparams/grpo.yml`` (the zoo's default is a path inside
  rl_zoo3); ``--trial-id 0`` loads trial 0 (rl_zoo3 2.9 loads the trial ``if self.trial_id``: 0 is made a
  true-valued 0, and the zoo's own loading does the rest);
- ``setup_experiment``: GRPO's own ``ValueError`` (a bad hyperparameter or an unsuitable env, raised by
  grpo-zoo's code and naming the parameter and the fix) and the zoo's "Hyperparameters not found" (no entry for
  the env) end the command with one ``error: ...`` line and exit code 1, the code every zoo algorithm exits with;
  any other error keeps its traceback, as does every error with ``--verbose 2``;
- ``objective``: the GRPO sampler sees the YAML entry (group mode, ``-params`` frozen keys, budget, the env's
  number of actions: the zoo's sampler signature does not pass them); a combination GRPO rejects prunes the trial
  with the reason (other errors fail it, as in the zoo); the trial records what it spent (user attributes
  ``sim_steps``, ``real_steps``, ``cpu_seconds``: CPU seconds of training, evaluations excluded, of the trial's
  thread when ``--n-jobs`` > 1);
- ``read_hyperparameters``: ``-params group_mode:...`` that switches the entry's group mode drops the entry's keys
  only the other modes read, with one warning naming them (keys given with ``-params`` are kept); one env is made
  with the entry's ``env_wrapper`` (``gym.make`` and the zoo's ``get_wrapper_class``, as ``create_envs`` does) and
  closed, so that an observation space no SB3 policy takes is GRPO's ``ValueError`` naming the env and the wrapper
  that fixes it (:mod:`grpo_zoo.zoo.observations`), before the zoo's VecEnvs fail on it;
- ``hyperparameters_optimization``: while the study runs, ``ALGOS["grpo"]`` is
  :class:`grpo_zoo.zoo.budget.SimulatorBudgetGRPO`, whose training stops once ``num_timesteps +
  num_probe_steps`` reaches the budget of a trial (``-n``, else the YAML ``n_timesteps``) and whose evaluations
  are spaced over it; an unusable ``--storage`` is one ``error: ...`` line (exit code 1); a database
  ``--storage`` gets heartbeats (a trial of a killed worker is retried): the name ``optuna`` *inside
  rl_zoo3.exp_manager* is, for the time of the study, optuna with a ``create_study`` that opens that storage (the
  optuna module itself is untouched); a study without a complete trial still writes its report; plots are PNG
  files (the zoo's plotly figures need a browser).

``huggingface_sb3.push_to_hub.generate_metadata`` (:func:`patch_huggingface_sb3`): rl-zoo3 2.9.2's ``push_to_hub``
imports it, but sb3-team-hf-integration 3.2 renamed it ``_generate_metadata`` (returning ``ModelCardData``, not a
dict), so ``python -m rl_zoo3.push_to_hub`` fails to import for every algorithm. A compatible alias is added.

``gymnasium.Env.grpo_branch`` (:mod:`grpo_zoo.groups.branching`, added when that module is imported): one method
every env answers to, so that ``VecEnv.env_method("grpo_branch", ...)`` reaches the brancher GRPO attached to an
env, in ``SubprocVecEnv`` workers too.

``PATH`` (:mod:`grpo_zoo.zoo.ffmpeg`): before ``rl_zoo3.record_training`` runs, imageio-ffmpeg's binary is put on
it when there is no system ``ffmpeg``.

Imports point down: this module uses :mod:`grpo_zoo.zoo.sampler`, :mod:`grpo_zoo.zoo.studies`,
:mod:`grpo_zoo.zoo.register`, :mod:`grpo_zoo.zoo.observations` and (once a study runs, it imports torch)
:mod:`grpo_zoo.zoo.budget`, never ``grpo_zoo.tuning``; rl_zoo3 is only touched through the objects it is given.
"""

import functools
import inspect
import os
import sys
import time
import warnings
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, NoReturn

import optuna

from grpo_zoo.groups.modes import MODES, arguments_of_other_modes
from grpo_zoo.zoo import sampler
from grpo_zoo.zoo.observations import check_observation_space
from grpo_zoo.zoo.register import ALGO_NAME, grpo_hyperparams_path
from grpo_zoo.zoo.studies import StorageError, make_storage, storage_errors, uses_heartbeats, write_plots

# Set on every function this module wraps, so that a second registration is a no-op
_PATCHED = "__grpo_zoo_patched__"
# Exit code of a zoo command that fails (an uncaught exception): the same for GRPO's own errors
ERROR_EXIT_CODE = 1
# The grpo_zoo package: a ValueError raised by its code is GRPO's (a bad hyperparameter, an unsuitable env)
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def exit_with_error(message: object) -> NoReturn:
    """
    End a zoo command with one ``error: ...`` line on stderr and the zoo's exit code.

    :param message: what went wrong and the fix
    """
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(ERROR_EXIT_CODE)


def _raise_site(error: BaseException) -> FrameType | None:
    """The frame that raised ``error``: the innermost of its traceback (None without one)."""
    traceback = error.__traceback__
    if traceback is None:
        return None
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback.tb_frame


def is_grpo_error(error: BaseException) -> bool:
    """
    Whether an error is GRPO's own ``ValueError``: raised by grpo-zoo's code (its argument and env checks, a reward
    function path), not by a library it called (a bug there keeps its traceback).

    :param error: the exception, with its traceback
    """
    frame = _raise_site(error)
    return (
        isinstance(error, ValueError)
        and frame is not None
        and Path(frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE_DIR)
    )


def _is_missing_entry(error: BaseException) -> bool:
    """rl_zoo3's ``ValueError`` of a hyperparameter file without an entry for the env (``read_hyperparameters``)."""
    frame = _raise_site(error)
    return (
        frame is not None
        and frame.f_globals.get("__name__") == "rl_zoo3.exp_manager"
        and frame.f_code.co_name == "read_hyperparameters"
    )


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
    # rl_zoo3 2.9: ``self.config = config or str(default_path / f"hyperparams/{self.algo}.yml")``,
    # ``self.trial_id = trial_id``
    signature = inspect.signature(manager_class.__init__)
    if not {"algo", "config", "trial_id"} <= set(signature.parameters):
        raise TypeError(f"unexpected ExperimentManager.__init__{signature}")
    _wrap(manager_class, "__init__", functools.partial(_init, signature))
    _wrap(manager_class, "setup_experiment", _setup_experiment)
    _wrap(manager_class, "objective", _objective)
    _wrap(manager_class, "read_hyperparameters", _read_hyperparameters)
    _wrap(manager_class, "hyperparameters_optimization", _hyperparameters_optimization)


class _TrialId(int):
    """A trial id that is true even when it is 0 (rl_zoo3 2.9 loads ``--trial-id`` only ``if self.trial_id``)."""

    def __bool__(self) -> bool:
        return True


def _init(signature: inspect.Signature, original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        if arguments.get("algo") != ALGO_NAME:
            return
        if not arguments.get("config"):
            self.config = str(grpo_hyperparams_path())
        if arguments.get("trial_id") == 0:
            self.trial_id = _TrialId(0)

    return __init__


def _setup_experiment(original: Any) -> Any:
    def setup_experiment(self: Any) -> Any:
        try:
            return original(self)
        except ValueError as error:
            # GRPO's bad hyperparameter or a missing entry: one clear line. ``--verbose 2`` keeps the traceback.
            if self.algo != ALGO_NAME or self.verbose > 1 or not (is_grpo_error(error) or _is_missing_entry(error)):
                raise
            exit_with_error(error)

    return setup_experiment


def _objective(original: Any) -> Any:
    def objective(self: Any, trial: optuna.Trial) -> float:
        if self.algo != ALGO_NAME:
            return original(self, trial)
        from grpo_zoo.zoo.budget import trial_budget

        # The study, for the report of a study whose every trial was pruned and for the plots
        self._grpo_study = trial.study
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
            if not is_grpo_error(e):
                raise
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
        hyperparams, saved_hyperparams = original(self)
        if self.algo == ALGO_NAME:
            _drop_other_mode_keys(self.custom_hyperparams or {}, hyperparams, saved_hyperparams)
            _check_observations(self, hyperparams, original.__globals__["get_wrapper_class"])
        return hyperparams, saved_hyperparams

    return read_hyperparameters


def _check_observations(self: Any, hyperparams: dict[str, Any], get_wrapper_class: Any) -> None:
    """
    Make one env as the zoo's ``create_envs`` will (``gym.make`` with ``--env-kwargs``, then the entry's
    ``env_wrapper``) and check its observation space (:func:`grpo_zoo.zoo.observations.check_observation_space`).

    :param hyperparams: The entry, ``-params`` applied (not changed)
    :param get_wrapper_class: ``rl_zoo3.utils.get_wrapper_class``, as the zoo's module sees it
    """
    import gymnasium as gym

    env_id = self.env_name.gym_id
    try:
        env = gym.make(env_id, **(self.env_kwargs or {}))
        wrapper = get_wrapper_class(dict(hyperparams))
        if wrapper is not None:
            env = wrapper(env)
    except Exception:
        return  # not a question of spaces: the zoo's own create_envs raises it again, with its traceback
    try:
        space = env.observation_space
    finally:
        env.close()
    check_observation_space(env_id, space, hyperparams.get("policy"), str(gym.spec(env_id).entry_point))


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


class _OptunaWithStorage:
    """
    ``optuna`` as ``rl_zoo3.exp_manager`` sees it while a GRPO study runs: ``create_study`` opens ``storage``
    (the one :func:`_open_zoo_storage` opened, with heartbeats), everything else is optuna's.

    :param storage: the opened storage
    :param label: the ``--storage`` argument, for error messages
    """

    def __init__(self, storage: Any, label: str) -> None:
        self._storage = storage
        self._label = label

    def __getattr__(self, name: str) -> Any:
        return getattr(optuna, name)

    def create_study(self, *args: Any, **kwargs: Any) -> optuna.Study:
        with storage_errors(self._label):
            return optuna.create_study(*args, **{**kwargs, "storage": self._storage})


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
    from grpo_zoo.zoo.budget import SimulatorBudgetGRPO

    if self.verbose > 0:
        print(f"grpo: the budget of a trial, {self.n_timesteps} steps, counts simulator steps (real + probe steps)")
    storage = _open_zoo_storage(self.storage) if self.storage else None
    # The globals of the zoo's module (rl_zoo3.exp_manager): what its study code sees, and only that code
    zoo = original.__globals__
    zoo_optuna, algos = zoo["optuna"], zoo["ALGOS"]
    registered = algos[ALGO_NAME]
    start = time.time()
    self._grpo_study = None
    if storage is not None and uses_heartbeats(self.storage, 60):
        zoo["optuna"] = _OptunaWithStorage(storage, self.storage)
    # The zoo's objective builds `ALGOS[algo](...)` and calls `learn(n_timesteps)`: for the time of the study,
    # a GRPO whose learn stops at n_timesteps simulator steps (set here, before --n-jobs threads start)
    algos[ALGO_NAME] = SimulatorBudgetGRPO
    try:
        original(self)
    except ValueError as e:
        # Every trial pruned: the zoo raises "No trials are completed yet" before writing its report
        study = self._grpo_study
        if study is None or study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            raise
        prefix = _report_prefix(self)
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        study.trials_dataframe().to_csv(f"{prefix}.csv")
        print(f"No trial completed ({e}): every trial was pruned, see the user attribute `pruned_reason`.")
        print(f"Writing report to {prefix}.csv")
        return
    finally:
        zoo["optuna"] = zoo_optuna
        algos[ALGO_NAME] = registered
    if self._grpo_study is not None and not self.no_optim_plots:
        reports = sorted(Path(self.log_folder, self.algo).glob(f"report_{self.env_name}_*.csv"), key=os.path.getmtime)
        reports = [path for path in reports if os.path.getmtime(path) >= start - 1]
        prefix = str(reports[-1].with_suffix("")) if reports else _report_prefix(self)
        for path in write_plots(self._grpo_study, prefix):
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
