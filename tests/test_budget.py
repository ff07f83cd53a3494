"""SimulatorBudget: a run stops at a budget of simulator steps (real + probe steps), evaluates over it, counts CPU seconds."""

import time

import optuna
import pytest
from rl_zoo3.callbacks import TrialEvalCallback
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from grpo_zoo import GRPO
from grpo_zoo.zoo.budget import SimulatorBudget, SimulatorBudgetGRPO, simulator_steps, trial_budget
from grpo_zoo.zoo.sampler import rollout_sim_steps

optuna.logging.set_verbosity(optuna.logging.WARNING)

# State groups on CartPole: 2 envs, half the states branched, runs of 4 steps
N_ENVS, N_STEPS = 2, 16
STATE_GROUPS = {
    "group_mode": "state", "group_size": 4, "horizon": 4, "branch_fraction": 0.5, "n_steps": N_STEPS, "batch_size": 32,
    "n_epochs": 1,
}  # fmt: skip
# At most one rollout more than the budget (CartPole: 2 distinct first actions)
ROLLOUT = rollout_sim_steps({"n_envs": N_ENVS, **STATE_GROUPS}, 2, N_STEPS)
BUDGET = 2000


def _grpo(cls: type = GRPO) -> GRPO:
    return cls("MlpPolicy", make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0), seed=0, **STATE_GROUPS)


class RecordingEval(EvalCallback):
    """Records the simulator steps at each evaluation; burns ``cpu`` seconds of CPU in each."""

    def __init__(self, eval_freq: int, cpu: float = 0.0) -> None:
        super().__init__(make_vec_env("CartPole-v1", n_envs=1, seed=1), n_eval_episodes=1, eval_freq=eval_freq, verbose=0)
        self.cpu = cpu
        self.at: list[int] = []

    def _on_step(self) -> bool:
        self.at.append(simulator_steps(self.model))
        start = time.process_time()
        while time.process_time() - start < self.cpu:
            pass
        return super()._on_step()


def test_grpo_stops_at_the_simulator_budget_and_evaluates_over_it():
    model = _grpo()
    evaluation = RecordingEval(eval_freq=10_000, cpu=0.2)
    budget = SimulatorBudget(BUDGET, [evaluation], n_evaluations=4)
    start = time.process_time()
    model.learn(BUDGET, callback=budget)
    outside = time.process_time() - start

    assert budget.sim_steps == model.num_timesteps + model.num_probe_steps
    assert budget.real_steps == model.num_timesteps
    assert model.num_probe_steps > 0 and budget.real_steps < BUDGET
    assert BUDGET <= budget.sim_steps <= BUDGET + ROLLOUT, (budget.sim_steps, ROLLOUT)
    assert budget.cost() == {
        "sim_steps": budget.sim_steps,
        "real_steps": budget.real_steps,
        "cpu_seconds": pytest.approx(budget.cpu_seconds, abs=1e-3),
    }
    # Evaluations at 1/4, 2/4, ... of the budget (one may cover two points when probes pass both), the last at its end
    assert 2 <= len(evaluation.at) <= 4 and evaluation.at == sorted(evaluation.at)
    assert evaluation.at[0] >= BUDGET / 4 and evaluation.at[-1] >= BUDGET
    # Training CPU seconds leave the evaluations out
    assert 0 < budget.cpu_seconds <= outside - 0.2 * len(evaluation.at) + 0.05


def test_trial_eval_steps_are_fractions_of_the_budget():
    """rl_zoo3's TrialEvalCallback reports evaluation k at step k of n, k / n of the budget, even when it skips one."""
    study = optuna.create_study()
    trial = study.ask()
    model = _grpo()
    evaluation = TrialEvalCallback(make_vec_env("CartPole-v1", n_envs=1), trial, n_eval_episodes=1, eval_freq=10**6)
    budget = SimulatorBudget(BUDGET, evaluation, n_evaluations=40)
    model.learn(BUDGET, callback=budget)
    steps = sorted(study.trials[0].intermediate_values)
    assert steps[-1] == 40 and set(steps) <= set(range(1, 41))
    # A rollout's probes (added at its end) cost more than a 40th of the budget: some points are passed together
    assert len(steps) < 40


def test_without_probes_simulator_steps_are_real_steps():
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0), n_steps=64, batch_size=64, n_epochs=1, seed=0)
    # eval_freq in calls of n_envs real steps: every 100 real steps, read as simulator steps (5 over 500)
    evaluation = RecordingEval(eval_freq=50)
    budget = SimulatorBudget(500, evaluation)
    model.learn(10_000, callback=budget)
    assert budget.sim_steps == budget.real_steps == model.num_timesteps == 500
    assert evaluation.at == [100, 200, 300, 400, 500]


def test_simulator_budget_grpo_records_the_cost_in_the_trial():
    study = optuna.create_study()
    trial = study.ask()
    model = _grpo(SimulatorBudgetGRPO)
    with trial_budget(trial):
        model.learn(BUDGET)
    attrs = study.trials[0].user_attrs
    assert BUDGET <= attrs["sim_steps"] <= BUDGET + ROLLOUT
    assert attrs["real_steps"] == model.num_timesteps < attrs["sim_steps"]
    assert attrs["cpu_seconds"] > 0
    # Outside a trial: the same budget, nothing recorded
    _grpo(SimulatorBudgetGRPO).learn(500)


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="`budget` must be >= 1"):
        SimulatorBudget(0)


def test_schedules_decay_over_the_simulator_budget():
    # A lin_ learning rate reaches 0 at the end of a simulator-step budget, not at total_timesteps real steps
    from stable_baselines3.common.env_util import make_vec_env

    from grpo_zoo import GRPO
    from grpo_zoo.zoo.budget import SimulatorBudget

    model = GRPO(
        "MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2, seed=0), group_mode="state",
        group_size=4, horizon=4, n_steps=16, n_epochs=1,
        learning_rate=lambda progress: progress * 1e-3, seed=0,
    )  # fmt: skip
    model.learn(1_000, callback=SimulatorBudget(1_000))
    assert model.num_timesteps + model.num_probe_steps >= 1_000
    assert model.num_timesteps < 500  # most simulator steps were probes
    assert model._current_progress_remaining == 0.0
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.0
    assert "progress_counts_probes" in model._excluded_save_params()
