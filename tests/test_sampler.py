"""GRPO's Optuna search space: constraints, converter round trip, frozen keys, the ExperimentManager patch."""

import inspect
from typing import ClassVar

import optuna
import pytest
import yaml
from stable_baselines3.common.env_util import make_vec_env

from grpo_zoo import GRPO
from grpo_zoo.groups.modes import MODES, arguments_in_effect
from grpo_zoo.tuning.report import best_yaml_entry
from grpo_zoo.zoo.patches import patch_experiment_manager
from grpo_zoo.zoo.sampler import (
    BRANCH_FRACTIONS,
    CONTEXT_KEYS,
    HORIZONS,
    NOISE_HOLDS,
    TUNABLE_KEYS,
    _rollout_size,
    _to_model_kwargs,
    convert_grpo_params,
    sample_grpo_params,
    rollout_sim_steps,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

GRPO_ARGS = set(inspect.signature(GRPO.__init__).parameters)
N_TRIALS = 90
# Simulator steps per trial
BUDGET = 20_000


# Keys of state groups only (GRPO rejects train_continuations=True in episode mode)
STATE_KEYS = ("horizon", "branch_fraction", "train_continuations")
# Booleans tuned in every mode
ANY_MODE_BOOLEANS = ("leave_one_out", "normalize_advantage", "dynamic_sampling")
BUDGET_PRUNED = "cannot hold one rollout"


def _sample(
    trial: optuna.Trial,
    group_mode: str,
    n_envs: int,
    fixed: dict | None = None,
    n_timesteps: int | None = None,
    distinct_actions: int | None = None,
):
    args = {
        "hyperparams": {"group_mode": group_mode},
        "fixed": fixed or {},
        "n_timesteps": n_timesteps,
        "distinct_actions": distinct_actions,
    }
    return sample_grpo_params(trial, 0, n_envs, args)


def _check_constraints(sampled: dict, trial: optuna.trial.BaseTrial, group_mode: str, n_envs: int) -> None:
    assert set(sampled) <= GRPO_ARGS, set(sampled) - GRPO_ARGS
    assert not set(sampled) & set(CONTEXT_KEYS)
    hyperparams = convert_grpo_params(trial.params)
    assert hyperparams["group_mode"] == group_mode and hyperparams["n_envs"] == n_envs
    n_steps, batch_size = hyperparams["n_steps"], hyperparams["batch_size"]
    # Only the modes that read a group size tune one (time bins: every episode of the rollout is a member)
    assert ("group_size" in hyperparams) == ("group_size" in MODES[group_mode].arguments), hyperparams
    group_size = hyperparams.get("group_size")
    assert group_size is None or group_size >= 2
    assert ("noise_hold" in hyperparams) == ("noise_hold" in MODES[group_mode].arguments), hyperparams
    assert hyperparams.get("noise_hold", 1) in NOISE_HOLDS
    assert all(type(hyperparams[name]) is bool for name in ANY_MODE_BOOLEANS), hyperparams
    if group_mode == "state":
        horizon, branch_fraction = hyperparams["horizon"], hyperparams["branch_fraction"]
        assert horizon in HORIZONS and branch_fraction in BRANCH_FRACTIONS
        # Continuations only with a run longer than one step; supervision only with continuations
        continuations = hyperparams.get("train_continuations")
        assert (continuations is not None) == (horizon > 1), hyperparams
        assert ("supervision" in hyperparams) == bool(continuations), hyperparams
        roots = max(1, int(n_steps * n_envs * branch_fraction))
        assert batch_size <= roots * group_size * (horizon if continuations else 1)
    else:
        # Episode groups of envs reset with one seed; time bins need no particular n_envs
        assert group_mode == "time" or n_envs % group_size == 0
        assert batch_size <= n_steps * n_envs
        assert not set(STATE_KEYS) & set(hyperparams) and hyperparams["supervision"] in ("outcome", "process")
    high = hyperparams["clip_range_high"]
    assert high is None or high >= hyperparams["clip_range"]
    assert 0 < hyperparams["gamma"] < 1


@pytest.mark.parametrize("sampler", ["random", "tpe"])
@pytest.mark.parametrize(
    "group_mode,n_envs",
    [("state", 1), ("state", 8), ("episode", 4), ("episode", 6), ("episode", 16), ("time", 1), ("time", 4)],
)
def test_sampled_params_respect_constraints(sampler, group_mode, n_envs):
    optuna_sampler = optuna.samplers.RandomSampler(seed=0) if sampler == "random" else optuna.samplers.TPESampler(seed=0)
    study = optuna.create_study(sampler=optuna_sampler, direction="maximize")

    def objective(trial):
        try:
            sampled = _sample(trial, group_mode, n_envs, n_timesteps=BUDGET)
        except optuna.TrialPruned as e:
            # Only state groups whose smallest rollout costs more simulator steps than the budget
            assert group_mode == "state" and BUDGET_PRUNED in str(e), e
            raise
        _check_constraints(sampled, trial, group_mode, n_envs)
        # Some structure for TPE to follow
        return -abs(sampled["clip_range"] - 0.2) - sampled["batch_size"] / 1e4

    study.optimize(objective, n_trials=N_TRIALS if sampler == "random" else N_TRIALS // 3)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) >= len(study.trials) // 2
    params = convert_grpo_params(study.best_trial.params)
    for trial in complete:
        hyperparams = convert_grpo_params(trial.params)
        # A whole rollout, probes included, fits in the simulator-step budget
        cost = rollout_sim_steps(hyperparams, hyperparams.get("group_size", 1), hyperparams["n_steps"])
        assert cost <= BUDGET and trial.user_attrs["rollout_sim_steps_max"] == cost
    assert params.get("group_size", 2) in (2, 4, 8, 16)


def test_fixed_trials_extremes():
    """Corners of the space through optuna's FixedTrial: the batch size is capped at the rollout size."""
    base = {
        "n_envs": 2,
        "group_mode": "episode",
        "group_size": 2,
        "noise_hold": 1,
        "supervision": "outcome",
        "loss_weighting": "run",
        "clip_range": 0.1,
        "clip_range_high_delta": 0.16,
        "scale_rewards": "group",
        "leave_one_out": False,
        "normalize_advantage": False,
        "dynamic_sampling": False,
        "beta": 0.0,
        "lr_schedule": "linear",
        "learning_rate": 1e-3,
        "n_steps_pow": 3,
        "batch_size_pow": 10,
        "n_epochs": 1,
        "ent_coef": 1e-8,
        "one_minus_gamma": 0.01,
        "max_grad_norm": 0.5,
        "net_arch": "tiny",
        "activation_fn": "relu",
    }
    sampled = _sample(optuna.trial.FixedTrial(base), "episode", 2, n_timesteps=1000)
    assert sampled["batch_size"] == 8 * 2
    assert sampled["clip_range_high"] == pytest.approx(0.26)
    assert sampled["learning_rate"](1.0) == pytest.approx(1e-3) and sampled["learning_rate"](0.5) == pytest.approx(5e-4)
    state = {**base, "n_envs": 1, "group_mode": "state", "group_size": 16, "horizon": 4, "clip_range_high_delta": 0.0}
    state.update(branch_fraction=1.0, train_continuations=False)
    del state["supervision"], state["loss_weighting"]
    sampled = _sample(optuna.trial.FixedTrial(state), "state", 1)
    assert sampled["batch_size"] == 8 * 1 * 16
    assert sampled["clip_range_high"] is None
    # Half the states branched, every step of the 4-step runs trained: 4 roots x 16 members x 4 steps
    state.update(branch_fraction=0.5, train_continuations=True, supervision="outcome", loss_weighting="step")
    sampled = _sample(optuna.trial.FixedTrial(state), "state", 1)
    assert sampled["batch_size"] == 4 * 16 * 4
    assert sampled["train_continuations"] is True and sampled["supervision"] == "outcome"
    # Each sampled combination builds a GRPO model (episode mode: a CartPole vec env with n_envs=2)
    env = make_vec_env("CartPole-v1", n_envs=2)
    model = GRPO("MlpPolicy", env, group_mode="episode", **_sample(optuna.trial.FixedTrial(base), "episode", 2))
    assert model.batch_size == 16


def test_impossible_episode_groups_are_pruned_with_a_reason():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="n_envs=1"):
        _sample(trial, "episode", 1)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    # Same study resumed with another YAML entry
    with pytest.raises(optuna.TrialPruned, match="another `n_envs`"):
        _sample(study.ask(), "episode", 4)
    # A frozen batch size larger than a rollout: pruned, not a crash
    with pytest.raises(optuna.TrialPruned, match="larger than a rollout"):
        _sample(optuna.create_study().ask(), "episode", 4, fixed={"batch_size": 4096, "n_steps": 8, "group_size": 4})


@pytest.mark.parametrize("group_mode", ["episode", "time"])
def test_random_samples_build_models(group_mode):
    """Random combinations construct GRPO without error (CartPole, 4 envs)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    env = make_vec_env("CartPole-v1", n_envs=4)
    for _ in range(10):
        trial = study.ask()
        model = GRPO("MlpPolicy", env, group_mode=group_mode, **_sample(trial, group_mode, 4))
        assert model.noise_hold == trial.params["noise_hold"]
        study.tell(trial, 0.0)


def test_time_bins_train_with_the_new_arguments():
    """A time-bin trial with every new argument on trains: held noise, RLOO baseline, dynamic sampling."""
    params = {
        "n_envs": 4,
        "group_mode": "time",
        "noise_hold": 4,
        "supervision": "process",
        "loss_weighting": "step",
        "clip_range": 0.2,
        "clip_range_high_delta": 0.04,
        "scale_rewards": "group",
        "leave_one_out": True,
        "normalize_advantage": True,
        "dynamic_sampling": True,
        "beta": 0.0,
        "lr_schedule": "constant",
        "learning_rate": 1e-3,
        "n_steps_pow": 5,
        "batch_size_pow": 6,
        "n_epochs": 1,
        "ent_coef": 1e-8,
        "one_minus_gamma": 0.01,
        "max_grad_norm": 0.5,
        "net_arch": "tiny",
        "activation_fn": "tanh",
    }
    sampled = _sample(optuna.trial.FixedTrial(params), "time", 4, n_timesteps=1000)
    assert "group_size" not in sampled and sampled["noise_hold"] == 4 and sampled["dynamic_sampling"] is True
    model = GRPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4), group_mode="time", seed=0, **sampled)
    model.learn(512)
    assert model.num_timesteps >= 512 and model._n_updates >= 1


def test_converter_round_trip():
    """convert(trial.params) gives the YAML form of what the zoo objective got (schedules as lin_, policy_kwargs string)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for group_mode, n_envs in (("state", 8), ("episode", 8), ("time", 4)):
        for _ in range(20):
            trial = study.ask()
            sampled = _sample(trial, group_mode, n_envs)
            hyperparams = convert_grpo_params(trial.params)
            assert {k: v for k, v in hyperparams.items() if k not in CONTEXT_KEYS}.keys() == sampled.keys()
            assert isinstance(hyperparams["policy_kwargs"], str)
            as_objects = _to_model_kwargs(hyperparams)
            for key, value in sampled.items():
                if callable(value) and not isinstance(value, type):
                    assert hyperparams[key].startswith("lin_")
                    assert as_objects[key](0.5) == pytest.approx(value(0.5))
                else:
                    assert as_objects[key] == value, key
            # Same values through the stored params again (what --trial-id does)
            study.tell(trial, 0.0)
            assert convert_grpo_params(study.trials[trial.number].params) == hyperparams
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))


def test_frozen_keys_are_recorded_not_tuned():
    study = optuna.create_study()
    trial = study.ask()
    fixed = {"group_size": 8, "clip_range": 0.3, "learning_rate": "lin_1e-3", "policy_kwargs": "dict(net_arch=[32])"}
    sampled = _sample(trial, "state", 4, fixed=fixed)
    assert not set(sampled) & set(fixed)
    hyperparams = convert_grpo_params(trial.params)
    assert {key: hyperparams[key] for key in fixed} == fixed
    assert "net_arch" not in trial.params
    assert trial.distributions["group_size"].single()


def test_state_keys_only_in_state_mode():
    """horizon, branch_fraction, train_continuations: always proposed for state groups, never for episode groups."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    seen = {"horizon": set(), "branch_fraction": set(), "train_continuations": set(), "supervision": set()}
    for _ in range(60):
        trial = study.ask()
        _sample(trial, "state", 2)
        assert {"horizon", "branch_fraction"} <= set(trial.params)
        assert ("train_continuations" in trial.params) == (trial.params["horizon"] > 1)
        assert ("supervision" in trial.params) == bool(trial.params.get("train_continuations"))
        for key in seen:
            if key in trial.params:
                seen[key].add(trial.params[key])
        study.tell(trial, 0.0)
    assert seen == {
        "horizon": set(HORIZONS),
        "branch_fraction": set(BRANCH_FRACTIONS),
        "train_continuations": {False, True},
        "supervision": {"outcome", "process"},
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=6))
    for _ in range(20):
        trial = study.ask()
        sampled = _sample(trial, "episode", 4)
        assert not set(STATE_KEYS) & (set(trial.params) | set(sampled))
        assert "supervision" in sampled
        study.tell(trial, 0.0)


@pytest.mark.parametrize("group_mode", list(MODES))
def test_each_mode_tunes_what_it_reads(group_mode):
    """The sampler follows grpo_zoo.groups.modes: of the modes' arguments, only those of this mode are tuned (exhaustive
    is the YAML's choice), each over all its values; the booleans of every mode take both values."""
    every_mode_argument = {name for spec in MODES.values() for name in spec.arguments} - {"exhaustive"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=11))
    seen: dict[str, set] = {}
    for _ in range(40):
        trial = study.ask()
        sampled = _sample(trial, group_mode, 4)
        hyperparams = convert_grpo_params(trial.params)
        reads = set(MODES[group_mode].arguments)
        # train_continuations only with horizon > 1: tuned where a run has later steps
        expected = reads - {"exhaustive"} - ({"train_continuations"} if hyperparams.get("horizon", 1) == 1 else set())
        assert every_mode_argument & set(sampled) == expected, sampled
        # supervision and loss_weighting exactly where the samples include the later steps of a run
        later_steps = "supervision" in arguments_in_effect(group_mode, hyperparams)
        assert ({"supervision", "loss_weighting"} <= set(sampled)) == later_steps, sampled
        for name in (*ANY_MODE_BOOLEANS, "noise_hold", "group_size"):
            if name in sampled:
                seen.setdefault(name, set()).add(sampled[name])
        study.tell(trial, 0.0)
    assert {name: seen[name] for name in ANY_MODE_BOOLEANS} == {name: {False, True} for name in ANY_MODE_BOOLEANS}
    if "noise_hold" in MODES[group_mode].arguments:
        assert seen["noise_hold"] == set(NOISE_HOLDS)
    else:
        assert "noise_hold" not in seen
    assert ("group_size" in seen) == ("group_size" in MODES[group_mode].arguments)


FROZEN = {
    "group_size": 8,
    "clip_range": 0.3,
    "clip_range_high": 0.4,
    "horizon": 16,
    "branch_fraction": 0.125,
    "train_continuations": True,
    "supervision": "outcome",
    "loss_weighting": "run",
    "scale_rewards": "batch",
    "noise_hold": 4,
    "leave_one_out": True,
    "normalize_advantage": True,
    "dynamic_sampling": True,
    "beta": 0.01,
    "learning_rate": "lin_1e-3",
    "n_steps": 32,
    "batch_size": 64,
    "n_epochs": 5,
    "ent_coef": 0.001,
    "gamma": 0.98,
    "max_grad_norm": 0.7,
    "policy_kwargs": "dict(net_arch=[32])",
}


@pytest.mark.parametrize("key", TUNABLE_KEYS)
def test_every_tunable_key_can_be_frozen(key):
    """-params key:value: recorded in the trial, not tuned, and the same value back from the stored trial."""
    assert set(FROZEN) == set(TUNABLE_KEYS)
    # State groups, or the first mode that reads the key (noise_hold: episode groups)
    readers = [name for name, spec in MODES.items() if key in spec.arguments]
    group_mode = "state" if not readers or "state" in readers else readers[0]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    fixed = {key: FROZEN[key]}
    if key in ("supervision", "loss_weighting"):
        # Only meaningful (hence recorded) where later steps are trained
        fixed.update(horizon=4, train_continuations=True)
    if key == "batch_size":
        # A frozen batch larger than a rollout is pruned: every state branched, 32 real steps x 2 members at least
        fixed.update(branch_fraction=1.0)
    for _ in range(5):
        trial = study.ask()
        sampled = _sample(trial, group_mode, 4, fixed=fixed)
        assert key not in sampled
        study.tell(trial, 0.0)
        hyperparams = convert_grpo_params(study.trials[trial.number].params)
        assert hyperparams[key] == FROZEN[key]


def test_frozen_state_keys_round_trip():
    """Frozen state keys, as `-params` parses them, come back from the stored trial in the YAML form."""
    from grpo_zoo.tune import parse_args

    args = parse_args(
        ["-params", "horizon:64", "branch_fraction:0.03125", "train_continuations:True", "supervision:'process'"]
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=8))
    trial = study.ask()
    sampled = _sample(trial, "state", 1, fixed=args.hyperparams)
    assert not set(sampled) & set(args.hyperparams)
    study.tell(trial, 0.0)
    hyperparams = convert_grpo_params(study.trials[0].params)
    assert {key: hyperparams[key] for key in args.hyperparams} == args.hyperparams
    assert type(hyperparams["train_continuations"]) is bool and type(hyperparams["horizon"]) is int
    # The batch is capped at the rollout: 1 root every 32 real steps, 64 steps of each member's run trained
    assert hyperparams["batch_size"] <= _rollout_size(hyperparams, hyperparams["group_size"], hyperparams["n_steps"])


def test_rollouts_fit_the_simulator_budget():
    """n_steps is capped so that a rollout, probes included, fits in the budget; a rollout that cannot is pruned."""
    fixed = {"group_mode": "state", "group_size": 16, "horizon": 64, "branch_fraction": 1.0}
    # CartPole: 2 actions, so 2 distinct first actions at most per branched state. Per env and rollout: n_steps
    # real steps, n_steps roots x 2 runs x 64 probe steps, 1 audit step
    assert rollout_sim_steps({"n_envs": 4, **fixed}, 2, 32) == 4 * (32 + 32 * 2 * 64 + 1) == 16516
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=9))
    n_steps = set()
    for _ in range(20):
        trial = study.ask()
        sampled = _sample(trial, "state", 4, fixed=fixed, n_timesteps=20_000, distinct_actions=2)
        assert trial.user_attrs["rollout_sim_steps_max"] <= 20_000
        n_steps.add(sampled["n_steps"])
        study.tell(trial, 0.0)
    assert n_steps == {8, 16, 32}
    # A Box action space: 16 distinct members probed for 64 steps, 4 x (8 + 8 x 16 x 64 + 1) steps for n_steps=8
    with pytest.raises(optuna.TrialPruned, match="budget of 20000 simulator steps cannot hold one rollout of n_steps=8"):
        _sample(optuna.create_study().ask(), "state", 4, fixed=fixed, n_timesteps=20_000)
    # Fewer states branched: the same members and horizon fit
    sampled = _sample(optuna.create_study().ask(), "state", 4, fixed={**fixed, "branch_fraction": 0.125}, n_timesteps=20_000)
    assert sampled["n_steps"] >= 8
    # Time bins (the default) and episode groups have no probes: n_steps * n_envs
    assert rollout_sim_steps({"n_envs": 4, "group_size": 16, "horizon": 64}, 2, 32) == 128
    # Episode groups: n_steps * n_envs <= 64
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=10))
    assert {_sample(study.ask(), "episode", 4, n_timesteps=64)["n_steps"] for _ in range(10)} == {8, 16}


def test_exhaustive_groups_do_not_tune_group_size():
    """Exhaustive state groups ignore group_size: it must be neither sampled nor returned (it would be noise)."""
    study = optuna.create_study()
    for _ in range(5):
        trial = study.ask()
        args = {"hyperparams": {"group_mode": "state", "exhaustive": True}, "fixed": {}, "n_timesteps": None}
        sampled = sample_grpo_params(trial, 3, 8, args)
        assert "group_size" not in sampled and "group_size" not in trial.params
        assert "clip_range" in sampled  # the rest is still tuned
    # freezing exhaustive off on the command line brings the group size back
    trial = study.ask()
    args = {"hyperparams": {"group_mode": "state", "exhaustive": True}, "fixed": {"exhaustive": False}, "n_timesteps": None}
    assert "group_size" in sample_grpo_params(trial, 3, 8, args)


def test_best_yaml_entry_is_zoo_yaml():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=4))
    for value in range(3):
        trial = study.ask()
        _sample(trial, "state", 8)
        study.tell(trial, float(value))
    base = {"n_envs": 8, "n_timesteps": 5e4, "policy": "MlpPolicy", "reward_function": "reward_fns.cartpole:reward"}
    text = best_yaml_entry(study, "CartPole-v1", base, comment="a study")
    assert text.startswith("# a study\nCartPole-v1:\n  n_envs: 8\n  n_timesteps: !!float 5e4\n  policy: MlpPolicy\n")
    assert text.rstrip().splitlines()[-1].startswith('  policy_kwargs: "dict(')
    entry = yaml.safe_load(text)["CartPole-v1"]
    assert isinstance(entry["n_timesteps"], float)
    assert entry["group_size"] == study.best_params["group_size"]
    assert set(entry) - {"n_timesteps", "policy", "n_envs"} <= GRPO_ARGS


@pytest.mark.parametrize(
    "group_mode,fixed,kept,left_out",
    [
        ("state", {"horizon": 4, "train_continuations": True}, {"horizon", "branch_fraction", "supervision"}, {"noise_hold"}),
        ("state", {"horizon": 1}, {"horizon", "branch_fraction"}, {"supervision", "loss_weighting", "noise_hold"}),
        ("episode", {}, {"group_size", "noise_hold", "supervision", "loss_weighting"}, set(STATE_KEYS) | {"exhaustive"}),
        ("time", {}, {"noise_hold", "supervision", "loss_weighting"}, set(STATE_KEYS) | {"exhaustive", "group_size"}),
    ],
)
def test_best_yaml_entry_leaves_out_keys_without_effect(group_mode, fixed, kept, left_out):
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    _sample(trial, group_mode, 4, fixed=fixed)
    study.tell(trial, 1.0)
    # The YAML entry the study started from holds keys of both modes
    base = {"n_envs": 4, "group_mode": group_mode, "supervision": "outcome", "exhaustive": False, "horizon": 1}
    base["loss_weighting"] = "run"
    base.update(branch_fraction=0.5, train_continuations=False, group_size=2, noise_hold=8)
    entry = yaml.safe_load(best_yaml_entry(study, "CartPole-v1", base))["CartPole-v1"]
    assert kept <= set(entry) and not left_out & set(entry), entry
    # The booleans of every mode are kept
    assert set(ANY_MODE_BOOLEANS) <= set(entry)
    assert entry["group_mode"] == group_mode


def test_patch_exp_manager_is_idempotent_and_grpo_only():
    class Manager:
        algo = "ppo"
        verbose = 0

        def __init__(self, algo=None, config=None, trial_id=None):
            pass

        def setup_experiment(self):
            return None

        def objective(self, trial):
            return 1.0

        def read_hyperparameters(self):
            return {}, {}

        def hyperparameters_optimization(self):
            return "zoo"

    patch_experiment_manager(Manager)
    objective = Manager.objective
    patch_experiment_manager(Manager)
    assert Manager.objective is objective
    assert Manager().objective(None) == 1.0 and Manager().hyperparameters_optimization() == "zoo"

    class GrpoManager(Manager):
        algo = "grpo"
        _hyperparams: ClassVar[dict] = {}
        custom_hyperparams = None
        n_timesteps = 100

        def objective(self, trial):
            GRPO("MlpPolicy", "CartPole-v1", group_size=1)  # GRPO's own ValueError

    patch_experiment_manager(GrpoManager)
    trial = optuna.create_study().ask()
    with pytest.raises(optuna.TrialPruned, match="invalid hyperparameters"):
        GrpoManager().objective(trial)
    assert "group_size" in trial.user_attrs["pruned_reason"]
