"""
Optuna search space of GRPO for ``rl_zoo3.train -optimize`` (and ``python -m grpo_zoo.tune``).

The zoo calls ``sample_grpo_params(trial, n_actions, n_envs, additional_args)`` inside
``ExperimentManager.objective`` and ``convert_grpo_params(trial.params)`` for ``--trial-id``.
Its sampler signature does not see the YAML hyperparameters, so :func:`patch_exp_manager` wraps
``objective`` to pass them (group mode fixed by the YAML, keys frozen with ``-params``, budget).

GRPO constraints the search space respects by construction:

- ``batch_size <= rollout size`` (state mode: ``n_steps * n_envs * group_size`` samples,
  episode mode: about ``n_steps * n_envs``), the batch size is capped at the rollout size;
- episode mode: ``n_envs % group_size == 0``, only divisors of ``n_envs`` are proposed;
- ``group_mode`` is never tuned: it is fixed by the YAML entry of the env (GRPO's default otherwise);
- ``horizon`` is only tuned in state mode, ``supervision`` only in episode mode;
- ``group_size`` is not tuned for exhaustive state groups (``exhaustive: true``), which ignore it;
- ``clip_range_high >= clip_range`` (sampled as an increment).

Anything left that GRPO rejects at construction (``ValueError``) prunes the trial with the reason,
as does a diverging run (GRPO raises ``ValueError`` on a non-finite reward or loss).
"""

import functools
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import optuna

from grpo_zoo.schedules import initial_value, linear_schedule_string, parse_schedule

# Keys of the search space. A key given on the command line (``-params group_size:4``) is frozen:
# it is recorded in the trial (so ``--trial-id`` reproduces it) but not tuned.
TUNABLE_KEYS = (
    "group_size",
    "clip_range",
    "clip_range_high",
    "horizon",
    "supervision",
    "scale_rewards",
    "beta",
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "ent_coef",
    "gamma",
    "max_grad_norm",
    "policy_kwargs",
)
GROUP_SIZES = (2, 4, 8, 16)
NET_ARCHS = {
    "tiny": [64],
    "small": [64, 64],
    "medium": [256, 256],
}
ACTIVATION_FNS = {
    "tanh": "nn.Tanh",
    "relu": "nn.ReLU",
}
# Keys of ``trial.params`` that only carry context for the converter, never returned to the zoo objective
CONTEXT_KEYS = ("n_envs", "group_mode")
# Primitive types Optuna can store as a categorical choice
_PRIMITIVES = (bool, int, float, str)

# Context set by the patched ``ExperimentManager.objective`` for the sampler running in the same thread
# (the zoo runs ``--n-jobs`` trials in threads).
_context = threading.local()


def _get_context(additional_args: dict[str, Any]) -> dict[str, Any]:
    return {**getattr(_context, "value", {}), **additional_args}


def _rollout_size(params: dict[str, Any], group_size: int, n_steps: int) -> int:
    """Number of samples in one rollout (upper bound for ``batch_size``)."""
    n_envs = int(params.get("n_envs", 1))
    if params.get("group_mode", "state") == "state":
        return n_steps * n_envs * group_size
    return n_steps * n_envs


def _to_int_pow(params: dict[str, Any], name: str, default: int) -> int:
    if f"{name}_pow" in params:
        return 2 ** int(params[f"{name}_pow"])
    return int(params.get(name, default))


def convert_grpo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Convert the raw values of a trial (``trial.params``) to GRPO/zoo hyperparameters,
    in the format of ``hyperparams/grpo.yml`` (learning rate schedule as ``"lin_<value>"``,
    ``policy_kwargs`` as a string), so the output can be fed to ``--trial-id`` or pasted in the YAML.

    :param sampled_params: ``trial.params`` of a trial sampled by :func:`sample_grpo_params`
    :return: the hyperparameters (includes ``n_envs`` and ``group_mode`` when recorded)
    """
    params = dict(sampled_params)
    hyperparams: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        if key in params:
            hyperparams[key] = params.pop(key)

    group_size = int(params.get("group_size", 4))
    n_steps = _to_int_pow(params, "n_steps", 64)
    for name in ("n_steps", "batch_size"):
        params.pop(f"{name}_pow", None)
        params.pop(name, None)
    if "n_steps" in sampled_params or "n_steps_pow" in sampled_params:
        hyperparams["n_steps"] = n_steps
    if "batch_size" in sampled_params or "batch_size_pow" in sampled_params:
        batch_size = _to_int_pow(sampled_params, "batch_size", 64)
        # Never larger than a rollout
        hyperparams["batch_size"] = min(batch_size, _rollout_size(sampled_params, group_size, n_steps))

    if "one_minus_gamma" in params:
        hyperparams["gamma"] = 1 - params.pop("one_minus_gamma")

    if "clip_range_high_delta" in params:
        delta = params.pop("clip_range_high_delta")
        # A frozen linear schedule ("lin_0.2"): clip-higher is an offset to its initial value
        clip_range = initial_value(params.get("clip_range", 0.2), "clip_range")
        hyperparams["clip_range_high"] = None if delta == 0 else round(clip_range + delta, 6)

    lr_schedule = params.pop("lr_schedule", "constant")
    if "learning_rate" in params and lr_schedule == "linear":
        params["learning_rate"] = linear_schedule_string(params["learning_rate"])

    net_arch = params.pop("net_arch", None)
    activation_fn = params.pop("activation_fn", None)
    if net_arch is not None or activation_fn is not None:
        policy_kwargs = []
        if net_arch is not None:
            policy_kwargs.append(f"net_arch={NET_ARCHS[net_arch]}")
        if activation_fn is not None:
            policy_kwargs.append(f"activation_fn={ACTIVATION_FNS[activation_fn]}")
        hyperparams["policy_kwargs"] = f"dict({', '.join(policy_kwargs)})"

    # Everything else (tuned or frozen) is already a GRPO argument
    hyperparams.update(params)
    return hyperparams


def _eval_policy_kwargs(policy_kwargs: str) -> dict[str, Any]:
    from torch import nn  # noqa: F401  (used by eval, as in the zoo)

    return eval(policy_kwargs)


def _to_model_kwargs(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Turn YAML-format values into objects, as ``ExperimentManager._preprocess_hyperparams`` does."""
    kwargs = dict(hyperparams)
    # Schedules the zoo turns into objects before GRPO sees them (SB3's picklable LinearSchedule, not rl_zoo3's)
    for key in ("learning_rate", "clip_range"):
        if key in kwargs:
            kwargs[key] = parse_schedule(key, kwargs[key])
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = _eval_policy_kwargs(kwargs["policy_kwargs"])
    return kwargs


def sample_grpo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for GRPO hyperparams.

    :param trial: Optuna trial
    :param n_actions: dimension of a Box action space (unused)
    :param n_envs: number of envs the trial trains with
    :param additional_args: zoo extras, plus (set by :func:`patch_exp_manager`) ``hyperparams``:
        the YAML hyperparameters of the env, ``fixed``: keys frozen on the command line,
        ``n_timesteps``: the training budget of a trial
    :return: the hyperparameters to update the zoo's model kwargs with
    """
    context = _get_context(additional_args)
    yaml_hyperparams = context.get("hyperparams") or {}
    fixed = {key: value for key, value in (context.get("fixed") or {}).items() if key in TUNABLE_KEYS}
    n_timesteps = context.get("n_timesteps")
    group_mode = yaml_hyperparams.get("group_mode", "state")

    def fix_or(name: str, suggest: Any) -> Any:
        # Frozen keys are recorded as single-choice categoricals so the converter sees them
        if name in fixed:
            value = fixed[name]
            if value is None or isinstance(value, _PRIMITIVES):
                return trial.suggest_categorical(name, [value])
            return value
        return suggest()

    # Context for the converter (single choice: not tuned)
    try:
        trial.suggest_categorical("n_envs", [n_envs])
        trial.suggest_categorical("group_mode", [group_mode])
    except ValueError as e:
        raise optuna.TrialPruned(
            f"this study was started with another `n_envs` or `group_mode` than n_envs={n_envs}, group_mode={group_mode!r} "
            f"({e}): use a new --study-name when the YAML entry changes"
        ) from e

    if group_mode == "episode":
        group_sizes = [g for g in (*GROUP_SIZES, 32, 64) if n_envs % g == 0]
        if not group_sizes and "group_size" not in fixed:
            raise optuna.TrialPruned(
                f"episode mode needs `n_envs` divisible by a `group_size` >= 2, got n_envs={n_envs}: raise n_envs in the YAML"
            )
    else:
        group_sizes = list(GROUP_SIZES)
    raw_fixed = context.get("fixed") or {}
    if group_mode == "state" and raw_fixed.get("exhaustive", yaml_hyperparams.get("exhaustive", False)):
        # Exhaustive groups score every action once: group_size is ignored, tuning it would only add noise
        group_size = int(fixed.get("group_size", yaml_hyperparams.get("group_size", 4)))
    else:
        group_size = fix_or("group_size", lambda: trial.suggest_categorical("group_size", group_sizes))
    if group_mode == "episode" and n_envs % int(group_size) != 0:
        raise optuna.TrialPruned(f"episode mode needs n_envs % group_size == 0, got n_envs={n_envs}, group_size={group_size}")

    if group_mode == "state":
        # Simulator cost per real step: group_size * horizon probe steps (at most 16 * 4)
        fix_or("horizon", lambda: trial.suggest_categorical("horizon", [1, 2, 4]))
    else:
        fix_or("supervision", lambda: trial.suggest_categorical("supervision", ["outcome", "process"]))

    fix_or("clip_range", lambda: trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3, 0.4]))
    # DAPO's clip-higher: clip_range_high = clip_range + delta (0 -> symmetric clipping)
    fix_or("clip_range_high", lambda: trial.suggest_categorical("clip_range_high_delta", [0.0, 0.04, 0.08, 0.16]))
    fix_or("scale_rewards", lambda: trial.suggest_categorical("scale_rewards", ["group", "batch", "none"]))
    fix_or("beta", lambda: trial.suggest_categorical("beta", [0.0, 0.001, 0.01, 0.04]))

    def suggest_learning_rate() -> float:
        trial.suggest_categorical("lr_schedule", ["constant", "linear"])
        return trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True)

    fix_or("learning_rate", suggest_learning_rate)

    # n_steps: from 2**3 to 2**10 real steps per env, no more than the whole budget
    max_n_steps_pow = 10
    if n_timesteps:
        max_n_steps_pow = max(3, min(max_n_steps_pow, int(math.log2(max(1, int(n_timesteps) // max(1, n_envs))))))
    n_steps = fix_or("n_steps", lambda: 2 ** trial.suggest_int("n_steps_pow", 3, max_n_steps_pow))
    rollout_size = _rollout_size({"n_envs": n_envs, "group_mode": group_mode}, int(group_size), int(n_steps))
    # batch_size: from 2**4 to 2**10 samples, capped at the rollout size by the converter
    fix_or("batch_size", lambda: trial.suggest_int("batch_size_pow", 4, 10))
    if "batch_size" in fixed and int(fixed["batch_size"]) > rollout_size:
        raise optuna.TrialPruned(f"`batch_size`={fixed['batch_size']} is larger than a rollout ({rollout_size} samples)")

    fix_or("n_epochs", lambda: trial.suggest_categorical("n_epochs", [1, 5, 10, 20]))
    fix_or("ent_coef", lambda: trial.suggest_float("ent_coef", 1e-8, 0.1, log=True))
    fix_or("gamma", lambda: trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True))
    fix_or("max_grad_norm", lambda: trial.suggest_float("max_grad_norm", 0.3, 2.0))

    def suggest_policy_kwargs() -> None:
        trial.suggest_categorical("net_arch", list(NET_ARCHS))
        trial.suggest_categorical("activation_fn", list(ACTIVATION_FNS))

    fix_or("policy_kwargs", suggest_policy_kwargs)

    hyperparams = convert_grpo_params(trial.params)
    # Display true values, as the zoo samplers do
    for key in ("n_steps", "batch_size", "gamma", "clip_range_high"):
        if key in hyperparams:
            trial.set_user_attr(key, hyperparams[key])
    trial.set_user_attr("rollout_size", rollout_size)

    # The objective already holds the YAML values (and the frozen ones, preprocessed): return only tuned keys
    tuned = {key: value for key, value in hyperparams.items() if key not in CONTEXT_KEYS and key not in fixed}
    return _to_model_kwargs(tuned)


def sampler_context(exp_manager: Any) -> dict[str, Any]:
    """
    What the sampler needs from an ``ExperimentManager`` (after ``setup_experiment()``).

    :param exp_manager: the zoo's experiment manager
    :return: ``additional_args`` for :func:`sample_grpo_params`
    """
    return {
        "hyperparams": exp_manager._hyperparams,
        "fixed": dict(exp_manager.custom_hyperparams or {}),
        "n_timesteps": exp_manager.n_timesteps,
    }


def _objective(original_objective: Any, self: Any, trial: optuna.Trial) -> float:
    """``ExperimentManager.objective`` passing the YAML to the sampler and pruning invalid combinations."""
    _context.value = sampler_context(self)
    try:
        return original_objective(self, trial)
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
        _context.value = {}


def _read_hyperparameters(original: Any, self: Any) -> Any:
    """``ExperimentManager.read_hyperparameters`` that also honours ``--trial-id 0`` (the zoo tests it as a bool)."""
    if self.algo == "grpo" and self.trial_id == 0 and self.storage and self.study_name:
        study_hyperparams = self.load_trial(self.storage, self.study_name, self.trial_id)
        custom = self.custom_hyperparams
        self.custom_hyperparams, self.trial_id = {**study_hyperparams, **(custom or {})}, None
        try:
            return original(self)
        finally:
            self.custom_hyperparams, self.trial_id = custom, 0
    return original(self)


def _report_prefix(self: Any) -> str:
    # Same name as rl_zoo3's report
    import time

    report_name = (
        f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}_{int(time.time())}"
    )
    return os.path.join(self.log_folder, self.algo, report_name)


def _hyperparameters_optimization(original: Any, self: Any) -> None:
    """
    ``ExperimentManager.hyperparameters_optimization`` that survives a study without a complete trial
    (every trial pruned: the zoo raises "No trials are completed yet" before writing its report),
    gives RDB storages heartbeats (a trial of a killed worker is retried) and writes the plots as PNG files
    (the zoo's plotly figures need a browser).
    """
    import rl_zoo3.exp_manager

    studies: list[optuna.Study] = []
    create_study = optuna.create_study

    @functools.wraps(create_study)
    def capture_create_study(*args: Any, **kwargs: Any) -> optuna.Study:
        storage = kwargs.get("storage")
        if isinstance(storage, str) and "://" in storage:
            # RDB URL: same storage with heartbeats, so a trial of a killed worker is marked FAIL and re-run
            from grpo_zoo.tuning.storage import make_storage

            kwargs["storage"] = make_storage(storage, heartbeat_interval=60, grace_period=120)
        study = create_study(*args, **kwargs)
        studies.append(study)
        return study

    start = time.time()
    rl_zoo3.exp_manager.optuna.create_study = capture_create_study  # type: ignore[attr-defined]
    try:
        original(self)
    except ValueError as e:
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
    if studies and not self.no_optim_plots:
        from grpo_zoo.tuning.report import write_plots

        reports = sorted(Path(self.log_folder, self.algo).glob(f"report_{self.env_name}_*.csv"), key=os.path.getmtime)
        reports = [path for path in reports if os.path.getmtime(path) >= start - 1]
        prefix = str(reports[-1].with_suffix("")) if reports else _report_prefix(self)
        for path in write_plots(studies[-1], prefix):
            print(f"Wrote {path}")


def patch_exp_manager(exp_manager_class: Any) -> None:
    """
    Wrap ``ExperimentManager.objective`` so the GRPO sampler sees the YAML hyperparameters
    (group mode, ``-params`` frozen keys, budget) and invalid combinations are pruned with a reason.
    Idempotent; other algorithms are left untouched.

    :param exp_manager_class: ``rl_zoo3.exp_manager.ExperimentManager``
    """
    if exp_manager_class.__dict__.get("_grpo_zoo_patched", False):
        return
    original_objective = exp_manager_class.objective
    original_read = exp_manager_class.read_hyperparameters
    original_optimization = exp_manager_class.hyperparameters_optimization

    @functools.wraps(original_objective)
    def objective(self: Any, trial: optuna.Trial) -> float:
        if self.algo != "grpo":
            return original_objective(self, trial)
        return _objective(original_objective, self, trial)

    @functools.wraps(original_read)
    def read_hyperparameters(self: Any) -> Any:
        return _read_hyperparameters(original_read, self)

    @functools.wraps(original_optimization)
    def hyperparameters_optimization(self: Any) -> None:
        if self.algo != "grpo":
            return original_optimization(self)
        return _hyperparameters_optimization(original_optimization, self)

    exp_manager_class.objective = objective  # type: ignore[attr-defined]
    exp_manager_class.hyperparameters_optimization = hyperparameters_optimization  # type: ignore[attr-defined]
    exp_manager_class.read_hyperparameters = read_hyperparameters  # type: ignore[attr-defined]
    exp_manager_class._grpo_zoo_patched = True  # type: ignore[attr-defined]
