"""
What a tuning trial spends, in the project's currency: simulator steps (real steps + GRPO's probe steps, which
cost what a real step costs) and CPU seconds.

- :class:`SimulatorBudget` wraps the callbacks of one ``learn``: it stops training once ``num_timesteps +
  num_probe_steps`` reaches the budget, spaces the run's evaluations (``EvalCallback``, e.g. rl_zoo3's
  ``TrialEvalCallback``) over that budget, and counts the CPU seconds of training, evaluations excluded;
- :class:`SimulatorBudgetGRPO` is GRPO whose ``learn(total_timesteps)`` does so: ``grpo_zoo.zoo.patches``
  registers it as ``--algo grpo`` while the zoo's ``-optimize`` runs (the zoo's objective is not copied), and
  :func:`trial_budget` tells it which trial to record the cost in.

``python -m grpo_zoo.tune`` wraps its own callbacks in :class:`SimulatorBudget` (``grpo_zoo.tuning.objective``).
Imports: stable-baselines3 and GRPO (torch); imported by the zoo glue only once a study runs.
"""

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback, EvalCallback
from stable_baselines3.common.type_aliases import MaybeCallback

from grpo_zoo.grpo import GRPO

SelfSimulatorBudgetGRPO = TypeVar("SelfSimulatorBudgetGRPO", bound="SimulatorBudgetGRPO")
# User attributes of a trial: what it spent (summed over the seeds of a grpo_zoo.tune trial)
COST_ATTRS = ("sim_steps", "real_steps", "cpu_seconds")


def simulator_steps(model: Any) -> int:
    """Real steps plus probe steps of a model (an algorithm without probes: its real steps)."""
    return int(model.num_timesteps) + int(getattr(model, "num_probe_steps", 0))


def _as_list(callback: MaybeCallback) -> list[BaseCallback]:
    """The callbacks of ``learn(callback=...)``, as SB3 reads them (a callable is a ``ConvertCallback``)."""
    if callback is None:
        return []
    if isinstance(callback, list):
        return list(callback)
    if isinstance(callback, BaseCallback):
        return [callback]
    return [ConvertCallback(callback)]


class _Evaluations:
    """
    When an ``EvalCallback`` evaluates: evaluation ``k`` of ``n`` once ``k * budget / n`` simulator steps are spent.

    :param budget: Simulator steps of the run
    :param n_evaluations: Evaluations over the run
    """

    def __init__(self, budget: int, n_evaluations: int) -> None:
        self.thresholds = [math.ceil(k * budget / n_evaluations) for k in range(1, n_evaluations + 1)]
        self.done = 0

    def due(self, sim_steps: int) -> int:
        """:return: how many thresholds ``sim_steps`` passed since the last call"""
        passed = sum(threshold <= sim_steps for threshold in self.thresholds)
        due, self.done = passed - self.done, passed
        return due


class SimulatorBudget(CallbackList):
    """
    Stop a run at a budget of simulator steps, evaluate over that budget and count its training CPU seconds.

    Training stops (``on_step`` returns False) at the first step at which ``num_timesteps + num_probe_steps``
    since the start reaches ``budget``, and GRPO's schedules decay over simulator steps too
    (``GRPO.progress_counts_probes``). GRPO adds a rollout's probe steps at its end, so a run spends at most the
    budget plus one rollout (its real and probe steps); SB3 does not train on the rollout it stops in.

    Each wrapped ``EvalCallback`` (with ``eval_freq > 0``) evaluates ``n_evaluations`` times, at
    ``k * budget / n_evaluations`` simulator steps, instead of every ``eval_freq`` calls (real steps). When a
    rollout's probes pass several of these at once, the policy is evaluated once and a ``TrialEvalCallback``'s
    pruner step (``eval_idx``) skips to the last one passed: step ``k`` always means ``k / n_evaluations`` of
    the budget, so the pruner compares trials at the same cost.

    :param budget: Simulator steps (real + probe steps) of the run
    :param callback: The run's own callbacks (``learn``'s ``callback``)
    :param n_evaluations: Evaluations of each ``EvalCallback`` over the budget; None: one per ``eval_freq * n_envs``
        simulator steps (the real steps between two evaluations, read as simulator steps)
    :param clock: CPU clock: ``time.process_time`` (this process), or ``time.thread_time`` when other runs share
        the process (the zoo's ``--n-jobs``). Neither counts the env processes of a ``SubprocVecEnv``
    """

    def __init__(
        self,
        budget: int,
        callback: MaybeCallback = None,
        n_evaluations: int | None = None,
        clock: Callable[[], float] = time.process_time,
    ) -> None:
        super().__init__(_as_list(callback))
        if budget < 1:
            raise ValueError(f"`budget` must be >= 1 simulator step, got budget={budget}")
        self.budget = int(budget)
        self.n_evaluations = n_evaluations
        self.clock = clock
        self._evaluations: dict[int, _Evaluations] = {}
        self._start_sim = self._start_real = 0
        self._start_cpu: float | None = None
        self._end_cpu: float | None = None
        self._callback_cpu = 0.0

    @property
    def sim_steps(self) -> int:
        """Simulator steps spent since training started."""
        return 0 if self._start_cpu is None else simulator_steps(self.model) - self._start_sim

    @property
    def real_steps(self) -> int:
        """Real steps taken since training started."""
        return 0 if self._start_cpu is None else int(self.model.num_timesteps) - self._start_real

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of training so far, less those spent in the wrapped callbacks (evaluations)."""
        if self._start_cpu is None:
            return 0.0
        end = self.clock() if self._end_cpu is None else self._end_cpu
        return end - self._start_cpu - self._callback_cpu

    def cost(self) -> dict[str, Any]:
        """:return: ``sim_steps``, ``real_steps`` and ``cpu_seconds``"""
        return {"sim_steps": self.sim_steps, "real_steps": self.real_steps, "cpu_seconds": round(self.cpu_seconds, 3)}

    def _timed(self, hook: Callable[[], Any]) -> Any:
        start = self.clock()
        try:
            return hook()
        finally:
            self._callback_cpu += self.clock() - start

    def _init_callback(self) -> None:
        super()._init_callback()
        n_envs = self.training_env.num_envs
        for callback in self.callbacks:
            if isinstance(callback, EvalCallback) and callback.eval_freq > 0:
                n_evaluations = self.n_evaluations or max(1, round(self.budget / (callback.eval_freq * n_envs)))
                self._evaluations[id(callback)] = _Evaluations(self.budget, n_evaluations)
                # Evaluate whenever on_step is called: this callback calls it when an evaluation is due
                callback.eval_freq = 1

    def _on_training_start(self) -> None:
        if hasattr(self.model, "progress_counts_probes"):
            # Schedules (lin_ learning rates, clip ranges) decay over the same budget the run is stopped at
            self.model.progress_counts_probes = True
        self._start_sim, self._start_real = simulator_steps(self.model), int(self.model.num_timesteps)
        self._start_cpu, self._end_cpu, self._callback_cpu = self.clock(), None, 0.0
        self._timed(super()._on_training_start)

    def _on_rollout_start(self) -> None:
        self._timed(super()._on_rollout_start)

    def _on_step(self) -> bool:
        sim_steps = self.sim_steps
        continue_training = True
        start = self.clock()
        for callback in self.callbacks:
            evaluations = self._evaluations.get(id(callback))
            if evaluations is not None:
                due = evaluations.due(sim_steps)
                if due == 0:
                    continue
                if hasattr(callback, "eval_idx"):
                    # rl_zoo3's TrialEvalCallback reports at eval_idx + 1: the last threshold passed
                    callback.eval_idx += due - 1
            continue_training = callback.on_step() and continue_training
        self._callback_cpu += self.clock() - start
        return continue_training and sim_steps < self.budget

    def _on_rollout_end(self) -> None:
        self._timed(super()._on_rollout_end)

    def _on_training_end(self) -> None:
        self._timed(super()._on_training_end)
        self._end_cpu = self.clock()


@dataclass
class _TrialRun:
    trial: Any
    n_evaluations: int | None
    clock: Callable[[], float]


# The trial this thread runs (the zoo runs --n-jobs trials in threads)
_trial_run = threading.local()


@contextlib.contextmanager
def trial_budget(
    trial: Any, n_evaluations: int | None = None, clock: Callable[[], float] = time.process_time
) -> Iterator[None]:
    """
    While the zoo's objective runs ``trial`` in this thread, :class:`SimulatorBudgetGRPO` records its cost in it.

    :param trial: The Optuna trial (user attributes ``sim_steps``, ``real_steps``, ``cpu_seconds``)
    :param n_evaluations: Evaluations over the budget (the zoo's ``--n-evaluations``)
    :param clock: CPU clock (see :class:`SimulatorBudget`)
    """
    _trial_run.value = _TrialRun(trial, n_evaluations, clock)
    try:
        yield
    finally:
        _trial_run.value = None


class SimulatorBudgetGRPO(GRPO):
    """
    GRPO whose ``learn(total_timesteps)`` spends ``total_timesteps`` simulator steps (real + probe steps), not
    real steps: its callbacks are wrapped in :class:`SimulatorBudget`. Registered as ``--algo grpo`` only while
    the zoo's ``-optimize`` runs (:mod:`grpo_zoo.zoo.patches`); the cost goes to the trial of
    :func:`trial_budget`.
    """

    def learn(
        self: SelfSimulatorBudgetGRPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "GRPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSimulatorBudgetGRPO:
        run: _TrialRun | None = getattr(_trial_run, "value", None)
        budget = SimulatorBudget(
            total_timesteps,
            callback,
            n_evaluations=run.n_evaluations if run is not None else None,
            clock=run.clock if run is not None else time.process_time,
        )
        try:
            # Real steps never exceed simulator steps: the budget callback is what stops the run
            return super().learn(total_timesteps, budget, log_interval, tb_log_name, reset_num_timesteps, progress_bar)
        finally:
            if run is not None:
                for key, value in budget.cost().items():
                    run.trial.set_user_attr(key, value)
