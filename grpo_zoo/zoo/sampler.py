"""
Optuna search space of GRPO for ``rl_zoo3.train -optimize`` (and ``python -m grpo_zoo.tune``).

The zoo calls ``sample_grpo_params(trial, n_actions, n_envs, additional_args)`` inside
``ExperimentManager.objective`` and ``convert_grpo_params(trial.params)`` for ``--trial-id``.
Its sampler signature does not see the YAML hyperparameters: :mod:`grpo_zoo.zoo.patches` wraps
``objective`` to pass them through :func:`set_context` (group mode fixed by the YAML, keys frozen with
``-params``, budget, the env's number of distinct actions).

The budget of a trial (``-n``, else the YAML ``n_timesteps``) is counted in **simulator steps**, real steps
plus GRPO's probe steps (:mod:`grpo_zoo.zoo.budget`): a probe step costs what a real step costs.

What is tuned depends on the group mode (the arguments it reads, :mod:`grpo_zoo.groups.modes`):

- state groups: ``horizon`` (1, 4, 16, 64), ``branch_fraction`` (1 to 1/32) and, when ``horizon > 1``,
  ``train_continuations``; a real step costs about ``1 + branch_fraction * (G - 1) * horizon`` simulator steps
  (G: members with distinct first actions, at most the env's number of actions);
- ``noise_hold`` (1 to 16 steps) where the mode reads it: episode groups and time bins;
- ``supervision`` and ``loss_weighting`` only where the samples include the later steps of a run: episode groups,
  time bins, and state groups with ``train_continuations``;
- ``group_size`` where the mode reads it (state and episode groups; time bins have no fixed group size), except
  for exhaustive state groups (``exhaustive: true``), which ignore it;
- in every mode: ``leave_one_out`` (RLOO baseline), ``dynamic_sampling`` (DAPO), ``normalize_advantage``, and the
  clipping, scaling, learning rate, rollout, epochs, entropy, discount and network keys.

GRPO constraints the search space respects by construction:

- ``batch_size <= rollout size`` (state mode: about ``n_steps * n_envs * branch_fraction * group_size``
  samples, times ``horizon`` with ``train_continuations``; episode and time modes: about ``n_steps * n_envs``),
  the batch size is capped at the rollout size;
- a rollout fits in the budget: ``n_steps`` is the largest power of 2 whose rollout costs at most the budget
  (:func:`rollout_sim_steps`, an upper bound), so a trial overshoots its budget by less than one rollout; a
  combination whose smallest rollout (``n_steps=8``) does not fit is pruned with the reason;
- episode mode: ``n_envs % group_size == 0``, only divisors of ``n_envs`` are proposed;
- ``group_mode`` is never tuned: it is fixed by the YAML entry of the env (GRPO's default otherwise);
- ``clip_range_high >= clip_range`` (sampled as an increment).

Anything left that GRPO rejects at construction (``ValueError``) prunes the trial with the reason,
as does a diverging run (GRPO raises ``ValueError`` on a non-finite reward or loss).

Imports: optuna, :mod:`grpo_zoo.schedules` and :mod:`grpo_zoo.groups.modes` only (no torch); nothing of rl_zoo3,
of the rest of ``grpo_zoo.zoo`` or of ``grpo_zoo.tuning`` (which builds on this module).
"""

import functools
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import optuna

from grpo_zoo.groups.modes import DEFAULT_GROUP_MODE, MODES, arguments_in_effect
from grpo_zoo.schedules import initial_value, linear_schedule_string, parse_schedule

# Keys of the search space. A key given on the command line (``-params group_size:4``) is frozen:
# it is recorded in the trial (so ``--trial-id`` reproduces it) but not tuned.
TUNABLE_KEYS = (
    "group_size",
    "clip_range",
    "clip_range_high",
    "horizon",
    "branch_fraction",
    "train_continuations",
    "noise_hold",
    "supervision",
    "loss_weighting",
    "scale_rewards",
    "leave_one_out",
    "normalize_advantage",
    "dynamic_sampling",
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
# State groups: steps of each member's run, and the fraction of the visited states that are branched
HORIZONS = (1, 4, 16, 64)
BRANCH_FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)
# Episode groups and time bins: real steps for which an env keeps the random number its actions are drawn from
NOISE_HOLDS = (1, 2, 4, 8, 16)
# Smallest n_steps proposed (2**3)
MIN_N_STEPS_POW = 3
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
# Schedules the zoo turns into objects before GRPO sees them (``ExperimentManager._preprocess_schedules``)
SCHEDULE_KEYS = ("learning_rate", "clip_range")
# Primitive types Optuna can store as a categorical choice
_PRIMITIVES = (bool, int, float, str)

# Context set by the patched ``ExperimentManager.objective`` for the sampler running in the same thread
# (the zoo runs ``--n-jobs`` trials in threads).
_context = threading.local()


def set_context(additional_args: dict[str, Any]) -> None:
    """
    What :func:`sample_grpo_params` sees besides the zoo's ``additional_args``, for this thread.

    :param additional_args: ``hyperparams`` (the env's YAML entry), ``fixed`` (``-params`` keys),
        ``n_timesteps`` (simulator-step budget of a trial), ``distinct_actions`` (of the env, None: unbounded);
        ``{}`` to clear
    """
    _context.value = additional_args


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
        "distinct_actions": _distinct_actions(exp_manager),
    }


def _distinct_actions(exp_manager: Any) -> int | None:
    """
    How many distinct actions the env has (None: a Box, or unknown), from one env built once per experiment
    manager: members of a state group that took the same first action share one probe.
    """
    if not hasattr(exp_manager, "_grpo_distinct_actions"):
        count = None
        if callable(getattr(exp_manager, "create_envs", None)):
            from gymnasium import spaces

            env = exp_manager.create_envs(1, no_log=True)
            space = env.action_space
            env.close()
            if isinstance(space, spaces.Discrete):
                count = int(space.n)
            elif isinstance(space, spaces.MultiDiscrete):
                count = math.prod(int(n) for n in space.nvec.flat)
            elif isinstance(space, spaces.MultiBinary):
                count = 2 ** math.prod(space.shape)
        exp_manager._grpo_distinct_actions = count
    return exp_manager._grpo_distinct_actions


def _rollout_size(params: Mapping[str, Any], group_size: int, n_steps: int) -> int:
    """
    Number of samples in one rollout (upper bound for ``batch_size``): state mode, ``group_size`` per branched
    state (``branch_fraction`` of ``n_steps * n_envs``, at least one), times ``horizon`` with
    ``train_continuations`` (every step of every member's run); episode and time modes, about ``n_steps * n_envs``
    (``group_size`` unused).
    """
    n_envs = int(params.get("n_envs", 1))
    if params.get("group_mode", DEFAULT_GROUP_MODE) == "state":
        roots = max(1, int(n_steps * n_envs * float(params.get("branch_fraction", 1.0))))
        steps_per_member = int(params.get("horizon", 1)) if params.get("train_continuations", False) else 1
        return roots * group_size * steps_per_member
    return n_steps * n_envs


def rollout_sim_steps(params: Mapping[str, Any], members: int, n_steps: int) -> int:
    """
    Upper bound of the simulator steps of one rollout, real and probe steps. State mode, per env: ``n_steps``
    real steps, at most ``ceil(n_steps * branch_fraction)`` branched states, each probing up to ``members`` runs
    of ``horizon`` steps (the real action's member is read off the real trajectory when its run ends within the
    rollout, so usually one fewer), and one audit probe step. Episode mode: ``n_steps * n_envs`` real steps (the
    running episodes are then finished: not bounded here). Time bins: ``n_steps * n_envs`` real steps.

    :param params: ``n_envs``, ``group_mode``, ``branch_fraction``, ``horizon``
    :param members: members with distinct first actions, at most (``group_size``, or fewer distinct actions)
    :param n_steps: real steps per env
    """
    n_envs = int(params.get("n_envs", 1))
    if params.get("group_mode", DEFAULT_GROUP_MODE) != "state":
        return n_steps * n_envs
    roots = math.ceil(n_steps * float(params.get("branch_fraction", 1.0)))
    return n_envs * (n_steps + roots * members * int(params.get("horizon", 1)) + 1)


def _to_int_pow(params: dict[str, Any], name: str, default: int) -> int:
    if f"{name}_pow" in params:
        return 2 ** int(params[f"{name}_pow"])
    return int(params.get(name, default))


# --- converter: trial.params -> YAML-format hyperparameters ------------------------------------------------


def _convert_rollout(sampled_params: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``n_steps`` and ``batch_size`` (sampled as powers of 2), the batch never larger than a rollout."""
    hyperparams: dict[str, Any] = {}
    group_size = int(params.get("group_size", 4))
    n_steps = _to_int_pow(params, "n_steps", 64)
    for name in ("n_steps", "batch_size"):
        params.pop(f"{name}_pow", None)
        params.pop(name, None)
    if "n_steps" in sampled_params or "n_steps_pow" in sampled_params:
        hyperparams["n_steps"] = n_steps
    if "batch_size" in sampled_params or "batch_size_pow" in sampled_params:
        batch_size = _to_int_pow(sampled_params, "batch_size", 64)
        hyperparams["batch_size"] = min(batch_size, _rollout_size(sampled_params, group_size, n_steps))
    return hyperparams


def _convert_policy_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """``net_arch`` and ``activation_fn`` choices as the zoo's ``policy_kwargs`` string."""
    net_arch = params.pop("net_arch", None)
    activation_fn = params.pop("activation_fn", None)
    if net_arch is None and activation_fn is None:
        return {}
    policy_kwargs = []
    if net_arch is not None:
        policy_kwargs.append(f"net_arch={NET_ARCHS[net_arch]}")
    if activation_fn is not None:
        policy_kwargs.append(f"activation_fn={ACTIVATION_FNS[activation_fn]}")
    return {"policy_kwargs": f"dict({', '.join(policy_kwargs)})"}


def convert_grpo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Convert the raw values of a trial (``trial.params``) to GRPO/zoo hyperparameters,
    in the format of ``hyperparams/grpo.yml`` (learning rate schedule as ``"lin_<value>"``,
    ``policy_kwargs`` as a string), so the output can be fed to ``--trial-id`` or pasted in the YAML.

    :param sampled_params: ``trial.params`` of a trial sampled by :func:`sample_grpo_params`
    :return: the hyperparameters (includes ``n_envs`` and ``group_mode`` when recorded)
    """
    params = dict(sampled_params)
    hyperparams: dict[str, Any] = {key: params.pop(key) for key in CONTEXT_KEYS if key in params}
    hyperparams.update(_convert_rollout(sampled_params, params))

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

    hyperparams.update(_convert_policy_kwargs(params))
    # Everything else (tuned or frozen) is already a GRPO argument
    hyperparams.update(params)
    return hyperparams


def _eval_policy_kwargs(policy_kwargs: str) -> dict[str, Any]:
    from torch import nn  # noqa: F401  (used by eval, as in the zoo)

    return eval(policy_kwargs)


def _to_model_kwargs(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Turn YAML-format values into objects, as ``ExperimentManager._preprocess_hyperparams`` does."""
    kwargs = dict(hyperparams)
    for key in SCHEDULE_KEYS:
        if key in kwargs:
            kwargs[key] = parse_schedule(key, kwargs[key])
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = _eval_policy_kwargs(kwargs["policy_kwargs"])
    return kwargs


# --- sampler: one function per group of keys, in a fixed order (a seeded sampler replays the same study) ----


class _Space:
    """
    A trial and the keys frozen on the command line.

    :param trial: the Optuna trial
    :param fixed: tunable keys given with ``-params`` (recorded, not tuned)
    """

    def __init__(self, trial: optuna.Trial, fixed: dict[str, Any]) -> None:
        self.trial = trial
        self.fixed = fixed

    def fix_or(self, name: str, suggest: Callable[[], Any]) -> Any:
        """:return: the frozen value of ``name`` (recorded as a single-choice categorical), else ``suggest()``"""
        if name not in self.fixed:
            return suggest()
        value = self.fixed[name]
        if value is None or isinstance(value, _PRIMITIVES):
            return self.trial.suggest_categorical(name, [value])
        return value


def _record_context(trial: optuna.Trial, n_envs: int, group_mode: str) -> None:
    """Context for the converter (single choices: not tuned); a study resumed with another YAML entry is pruned."""
    try:
        trial.suggest_categorical("n_envs", [n_envs])
        trial.suggest_categorical("group_mode", [group_mode])
    except ValueError as e:
        raise optuna.TrialPruned(
            f"this study was started with another `n_envs` or `group_mode` than n_envs={n_envs}, group_mode={group_mode!r} "
            f"({e}): use a new --study-name when the YAML entry changes"
        ) from e


def _suggest_group_size(space: _Space, group_mode: str, n_envs: int, exhaustive: bool, yaml_group_size: Any) -> int | None:
    """
    Episode mode: divisors of ``n_envs`` only; exhaustive state groups: not tuned (they ignore it).

    :return: the group size; None for a mode that does not read ``group_size`` (not tuned, not recorded)
    """
    if "group_size" not in MODES[group_mode].arguments:
        return None
    if group_mode == "episode":
        group_sizes = [g for g in (*GROUP_SIZES, 32, 64) if n_envs % g == 0]
        if not group_sizes and "group_size" not in space.fixed:
            raise optuna.TrialPruned(
                f"episode mode needs `n_envs` divisible by a `group_size` >= 2, got n_envs={n_envs}: raise n_envs in the YAML"
            )
    else:
        group_sizes = list(GROUP_SIZES)
    if group_mode == "state" and exhaustive:
        # Exhaustive groups score every action once: group_size is ignored, tuning it would only add noise
        group_size = int(space.fixed.get("group_size", yaml_group_size))
    else:
        group_size = int(space.fix_or("group_size", lambda: space.trial.suggest_categorical("group_size", group_sizes)))
    if group_mode == "episode" and n_envs % group_size != 0:
        raise optuna.TrialPruned(f"episode mode needs n_envs % group_size == 0, got n_envs={n_envs}, group_size={group_size}")
    return group_size


def _suggest_group_mechanism(space: _Space, group_mode: str) -> dict[str, Any]:
    """
    The arguments of the group mode (:mod:`grpo_zoo.groups.modes`) that the search space covers, and
    ``supervision`` where the samples include the later steps of a run.

    :return: the values of the keys sampled or frozen here
    """
    trial = space.trial
    reads = MODES[group_mode].arguments
    values: dict[str, Any] = {}
    if "horizon" in reads:
        values["horizon"] = int(space.fix_or("horizon", lambda: trial.suggest_categorical("horizon", list(HORIZONS))))
    if "branch_fraction" in reads:
        values["branch_fraction"] = float(
            space.fix_or("branch_fraction", lambda: trial.suggest_categorical("branch_fraction", list(BRANCH_FRACTIONS)))
        )
    # A run of one step has no later step to train on: continuations only matter with horizon > 1
    if "train_continuations" in reads and (values.get("horizon", 1) > 1 or "train_continuations" in space.fixed):
        values["train_continuations"] = bool(
            space.fix_or("train_continuations", lambda: trial.suggest_categorical("train_continuations", [False, True]))
        )
    if "noise_hold" in reads:
        # Persistent exploration: each action still a sample of pi_old, its random number kept for k steps
        values["noise_hold"] = int(
            space.fix_or("noise_hold", lambda: trial.suggest_categorical("noise_hold", list(NOISE_HOLDS)))
        )
    if "supervision" in arguments_in_effect(group_mode, values):
        values["supervision"] = space.fix_or(
            "supervision", lambda: trial.suggest_categorical("supervision", ["outcome", "process"])
        )
        # Runs of different lengths: each step alike, or each run alike (DeepSeekMath's per-sequence mean)
        values["loss_weighting"] = space.fix_or(
            "loss_weighting", lambda: trial.suggest_categorical("loss_weighting", ["step", "run"])
        )
    return values


def _suggest_objective(space: _Space) -> None:
    """How the surrogate is clipped, the advantages baselined and scaled, which samples are trained, the regulariser."""
    trial = space.trial
    space.fix_or("clip_range", lambda: trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3, 0.4]))
    # DAPO's clip-higher: clip_range_high = clip_range + delta (0 -> symmetric clipping)
    space.fix_or("clip_range_high", lambda: trial.suggest_categorical("clip_range_high_delta", [0.0, 0.04, 0.08, 0.16]))
    space.fix_or("scale_rewards", lambda: trial.suggest_categorical("scale_rewards", ["group", "batch", "none"]))
    # Any mode: RLOO's baseline, PPO's per-minibatch normalisation, DAPO's dynamic sampling (zero-advantage samples
    # dropped, rollouts collected until a minibatch has signal)
    for name in ("leave_one_out", "normalize_advantage", "dynamic_sampling"):
        space.fix_or(name, functools.partial(trial.suggest_categorical, name, [False, True]))
    space.fix_or("beta", lambda: trial.suggest_categorical("beta", [0.0, 0.001, 0.01, 0.04]))

    def suggest_learning_rate() -> float:
        trial.suggest_categorical("lr_schedule", ["constant", "linear"])
        return trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True)

    space.fix_or("learning_rate", suggest_learning_rate)


def _suggest_rollout(space: _Space, params: dict[str, Any], group_size: int, members: int, n_timesteps: int | None) -> int:
    """
    ``n_steps`` from 2**3 to 2**10 real steps per env, a rollout costing no more simulator steps than the budget,
    and ``batch_size`` from 2**4 to 2**10 samples (capped at the rollout size by the converter).

    :param params: ``n_envs``, ``group_mode`` and the keys of :func:`_suggest_group_mechanism`
    :param members: members with distinct first actions, at most (:func:`rollout_sim_steps`)
    :param n_timesteps: the simulator-step budget of a trial (None: unbounded)
    :return: the rollout size
    """
    trial = space.trial
    max_n_steps_pow = 10
    if n_timesteps:
        # The budget must hold a whole rollout, probes included, or the last rollout would overshoot it
        fits = [pow_ for pow_ in range(MIN_N_STEPS_POW, 11) if rollout_sim_steps(params, members, 2**pow_) <= n_timesteps]
        if not fits and "n_steps" not in space.fixed:
            smallest = rollout_sim_steps(params, members, 2**MIN_N_STEPS_POW)
            if params["group_mode"] == "state":
                probes = f", {members} members probed for horizon={params.get('horizon', 1)} steps"
                fix = "raise -n, or freeze a smaller `horizon`, `branch_fraction` or `group_size`"
            else:
                probes, fix = "", "raise -n, or lower `n_envs` in the YAML"
            raise optuna.TrialPruned(
                f"the budget of {int(n_timesteps)} simulator steps cannot hold one rollout of n_steps="
                f"{2**MIN_N_STEPS_POW} (up to {smallest} simulator steps with n_envs={params['n_envs']}{probes}): {fix}"
            )
        max_n_steps_pow = max(fits, default=MIN_N_STEPS_POW)
    n_steps = int(space.fix_or("n_steps", lambda: 2 ** trial.suggest_int("n_steps_pow", MIN_N_STEPS_POW, max_n_steps_pow)))
    trial.set_user_attr("rollout_sim_steps_max", rollout_sim_steps(params, members, n_steps))
    rollout_size = _rollout_size(params, group_size, n_steps)
    space.fix_or("batch_size", lambda: trial.suggest_int("batch_size_pow", 4, 10))
    if "batch_size" in space.fixed and int(space.fixed["batch_size"]) > rollout_size:
        raise optuna.TrialPruned(f"`batch_size`={space.fixed['batch_size']} is larger than a rollout ({rollout_size} samples)")
    return rollout_size


def _suggest_optimizer(space: _Space) -> None:
    """Epochs, entropy bonus, discount, gradient clipping and the network."""
    trial = space.trial
    space.fix_or("n_epochs", lambda: trial.suggest_categorical("n_epochs", [1, 5, 10, 20]))
    space.fix_or("ent_coef", lambda: trial.suggest_float("ent_coef", 1e-8, 0.1, log=True))
    space.fix_or("gamma", lambda: trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True))
    space.fix_or("max_grad_norm", lambda: trial.suggest_float("max_grad_norm", 0.3, 2.0))

    def suggest_policy_kwargs() -> None:
        trial.suggest_categorical("net_arch", list(NET_ARCHS))
        trial.suggest_categorical("activation_fn", list(ACTIVATION_FNS))

    space.fix_or("policy_kwargs", suggest_policy_kwargs)


def sample_grpo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for GRPO hyperparams.

    :param trial: Optuna trial
    :param n_actions: dimension of a Box action space (unused)
    :param n_envs: number of envs the trial trains with
    :param additional_args: zoo extras, plus (given here or through :func:`set_context`) ``hyperparams``:
        the YAML hyperparameters of the env, ``fixed``: keys frozen on the command line,
        ``n_timesteps``: the simulator-step budget of a trial, ``distinct_actions``: how many distinct actions
        the env has (None: a Box or unknown)
    :return: the hyperparameters to update the zoo's model kwargs with
    """
    context = {**getattr(_context, "value", {}), **additional_args}
    yaml_hyperparams = context.get("hyperparams") or {}
    raw_fixed = context.get("fixed") or {}
    space = _Space(trial, {key: value for key, value in raw_fixed.items() if key in TUNABLE_KEYS})
    group_mode = yaml_hyperparams.get("group_mode", DEFAULT_GROUP_MODE)
    exhaustive = bool(raw_fixed.get("exhaustive", yaml_hyperparams.get("exhaustive", False)))
    distinct_actions = context.get("distinct_actions")

    _record_context(trial, n_envs, group_mode)
    # Time bins read no group size (every episode of the rollout is a member): 1 stands in where only state groups look
    group_size = _suggest_group_size(space, group_mode, n_envs, exhaustive, yaml_hyperparams.get("group_size", 4)) or 1
    mechanism = _suggest_group_mechanism(space, group_mode)
    _suggest_objective(space)
    # Members that took the same first action share one probe: at most as many distinct ones as the env has actions
    members = group_size if distinct_actions is None else min(distinct_actions, group_size)
    if group_mode == "state" and exhaustive:
        members = distinct_actions or group_size
    params = {"n_envs": n_envs, "group_mode": group_mode, **mechanism}
    rollout_size = _suggest_rollout(space, params, group_size, members, context.get("n_timesteps"))
    _suggest_optimizer(space)

    hyperparams = convert_grpo_params(trial.params)
    # Display true values, as the zoo samplers do
    for key in ("n_steps", "batch_size", "gamma", "clip_range_high"):
        if key in hyperparams:
            trial.set_user_attr(key, hyperparams[key])
    trial.set_user_attr("rollout_size", rollout_size)

    # The objective already holds the YAML values (and the frozen ones, preprocessed): return only tuned keys
    tuned = {key: value for key, value in hyperparams.items() if key not in CONTEXT_KEYS and key not in space.fixed}
    return _to_model_kwargs(tuned)
