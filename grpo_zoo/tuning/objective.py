"""
Multi-seed objective for GRPO studies, built on rl_zoo3's ``ExperimentManager`` (envs, wrappers, YAML).

Each seed of a trial spends the same budget of simulator steps, real + probe steps (``-n``, else the YAML
``n_timesteps``; :class:`grpo_zoo.zoo.budget.SimulatorBudget`), and the trial records what it spent.

Imports point down: ``grpo_zoo.zoo`` (registration, patches, search space, budget) and
:mod:`grpo_zoo.tuning.storage`; rl_zoo3 and torch when a study runs.
"""

import argparse
import contextlib
import io
from typing import Any

import numpy as np
import optuna

from grpo_zoo.tuning.storage import INTERRUPTED_ATTR, WORKER_ATTR, worker_name
from grpo_zoo.zoo.hook import register_grpo
from grpo_zoo.zoo.sampler import sample_grpo_params, sampler_context

STATISTICS = ("last", "best", "mean")


def make_exp_manager(args: argparse.Namespace) -> Any:
    """
    An ``ExperimentManager`` set up for optimisation: YAML read, schedules/wrappers/normalisation preprocessed,
    no model created, nothing written to the log folder.

    :param args: parsed ``grpo_zoo.tune`` arguments
    :return: the experiment manager
    """
    register_grpo()
    from rl_zoo3.exp_manager import ExperimentManager

    exp_manager = ExperimentManager(
        args,
        "grpo",
        args.env,
        args.log_folder,
        n_timesteps=args.n_timesteps,
        n_eval_episodes=args.eval_episodes,
        hyperparams=args.hyperparams,
        env_kwargs=args.env_kwargs,
        optimize_hyperparameters=True,
        n_evaluations=args.n_evaluations,
        seed=args.seed,
        verbose=0,
        vec_env_type=args.vec_env,
        n_eval_envs=args.n_eval_envs,
        device=args.device,
        config=args.conf_file,
    )
    # Trials do not write run folders
    exp_manager.create_log_folder = lambda: None  # type: ignore[method-assign]
    # The zoo prints the whole YAML entry: once per worker is noise in the progress display
    with contextlib.redirect_stdout(io.StringIO()):
        exp_manager.setup_experiment()
    return exp_manager


def _statistic(evaluations: list[float], statistic: str) -> float:
    if statistic == "last":
        return float(evaluations[-1])
    if statistic == "best":
        return float(np.max(evaluations))
    return float(np.mean(evaluations))


def _make_eval_callback(eval_env: Any, trial: optuna.Trial, step_offset: int, n_evaluations: int, **kwargs: Any) -> Any:
    from rl_zoo3.callbacks import TrialEvalCallback

    class SeedEvalCallback(TrialEvalCallback):
        """
        rl_zoo3's ``TrialEvalCallback``, reporting seed ``k`` at steps ``k * n_evaluations + 1...`` and keeping
        values. Evaluation ``e`` is due at ``e / n_evaluations`` of the simulator budget (``SimulatorBudget``,
        which may skip a step when a rollout's probes pass two evaluation points at once).
        """

        def __init__(self) -> None:
            super().__init__(eval_env, trial, **kwargs)
            self.eval_idx = step_offset
            self.values: list[float] = []

        @property
        def complete(self) -> bool:
            """Whether the evaluation at the end of the budget was made."""
            return self.eval_idx - step_offset >= n_evaluations

        def _on_step(self) -> bool:
            n_before = self.eval_idx
            keep_going = super()._on_step()
            if self.eval_idx > n_before:
                self.values.append(float(self.last_mean_reward))
            return keep_going

    return SeedEvalCallback()


class MultiSeedObjective:
    """
    Score of a trial: mean over ``seeds`` of a statistic (last, best or mean) of its evaluations.

    Seeds run one after another, each until it has spent ``n_timesteps`` simulator steps (real + probe steps);
    evaluation ``e`` of seed ``k`` is made at ``e / n_evaluations`` of that budget and reported at step
    ``k * n_evaluations + e``, so the pruner compares trials at the same seed and cost. Invalid combinations and
    diverging runs (GRPO's ``ValueError`` on a non-finite reward or loss) are pruned with the reason in
    ``pruned_reason``.

    What a trial spent, its seeds summed, is in its user attributes ``sim_steps``, ``real_steps`` and
    ``cpu_seconds`` (CPU seconds of training, evaluations excluded), per seed in ``seed_sim_steps``, ...

    :param exp_manager: experiment manager from :func:`make_exp_manager`
    :param seeds: seeds of each trial (the same for every trial: common random numbers)
    :param statistic: "last", "best" or "mean" of the evaluations of one seed
    """

    def __init__(self, exp_manager: Any, seeds: list[int], statistic: str = "mean") -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"`statistic` must be one of {STATISTICS}, got statistic={statistic!r}")
        self.exp_manager = exp_manager
        self.seeds = seeds
        self.statistic = statistic

    def _prune(self, trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
        trial.set_user_attr("pruned_reason", reason)
        print(f"Trial {trial.number} pruned: {reason}", flush=True)
        return optuna.TrialPruned(reason)

    def _run_seed(self, trial: optuna.Trial, kwargs: dict[str, Any], seed_idx: int, seed: int) -> float:
        from rl_zoo3.utils import ALGOS

        from grpo_zoo.zoo.budget import SimulatorBudget

        em = self.exp_manager
        n_evaluations = int(em.n_evaluations)
        # Envs are seeded from the experiment manager
        em.seed = seed
        env = em.create_envs(em.n_envs, no_log=True)
        eval_env = em.create_envs(n_envs=em.n_eval_envs, eval_env=True)
        try:
            try:
                model = ALGOS["grpo"](env=env, tensorboard_log=None, seed=seed, verbose=0, device=em.device, **kwargs)
            except ValueError as e:
                raise self._prune(trial, f"invalid hyperparameters: {e}") from e
            callback = _make_eval_callback(
                eval_env,
                trial,
                seed_idx * n_evaluations,
                n_evaluations,
                n_eval_episodes=em.n_eval_episodes,
                eval_freq=1,  # SimulatorBudget calls it when an evaluation is due
                deterministic=em.deterministic_eval,
            )
            # The budget counts simulator steps: training stops once real + probe steps reach n_timesteps
            budget = SimulatorBudget(em.n_timesteps, callback, n_evaluations=n_evaluations)
            try:
                model.learn(em.n_timesteps, callback=budget)
            except (AssertionError, ValueError) as e:
                raise self._prune(trial, f"diverged (seed={seed}): {e}") from e
            finally:
                self._add_cost(trial, budget.cost())
            if callback.is_pruned:
                raise self._prune(trial, f"pruned by the pruner at step {callback.eval_idx} (seed={seed})")
            if not callback.complete:
                # Stopped before the evaluation at the end of the budget: evaluate the final policy
                from stable_baselines3.common.evaluation import evaluate_policy
                from stable_baselines3.common.vec_env import sync_envs_normalization

                sync_envs_normalization(env, eval_env)
                mean_reward, _ = evaluate_policy(
                    model, eval_env, n_eval_episodes=em.n_eval_episodes, deterministic=em.deterministic_eval
                )
                callback.values.append(float(np.mean(mean_reward)))
            return _statistic(callback.values, self.statistic)
        finally:
            env.close()
            eval_env.close()

    @staticmethod
    def _add_cost(trial: optuna.Trial, cost: dict[str, Any]) -> None:
        """Add what a seed spent to the trial's ``sim_steps``, ``real_steps``, ``cpu_seconds`` (per seed: ``seed_*``)."""
        for key, value in cost.items():
            trial.set_user_attr(key, round(trial.user_attrs.get(key, 0) + value, 3))
            trial.set_user_attr(f"seed_{key}", [*trial.user_attrs.get(f"seed_{key}", []), value])

    def __call__(self, trial: optuna.Trial) -> float:
        from grpo_zoo.zoo.budget import COST_ATTRS

        trial.set_user_attr(WORKER_ATTR, worker_name(trial.number))
        # Nothing spent yet (a retried trial inherits the user attributes of the trial it retries)
        for key in COST_ATTRS:
            trial.set_user_attr(key, 0)
            trial.set_user_attr(f"seed_{key}", [])
        em = self.exp_manager
        kwargs = em._hyperparams.copy()
        try:
            kwargs.update(sample_grpo_params(trial, em.n_actions, em.n_envs, sampler_context(em)))
        except optuna.TrialPruned as e:
            # A combination the search space rules out (e.g. a rollout larger than the budget): say why
            raise self._prune(trial, str(e)) from e

        scores: list[float] = []
        try:
            for seed_idx, seed in enumerate(self.seeds):
                scores.append(self._run_seed(trial, kwargs, seed_idx, seed))
                trial.set_user_attr("seed_scores", scores)
        except KeyboardInterrupt:
            # Optuna marks it FAIL: a resumed study runs it again (see grpo_zoo.tuning.storage.retry_interrupted_trials)
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise
        score = float(np.mean(scores))
        trial.set_user_attr("score_std", float(np.std(scores)))
        if not np.isfinite(score):
            raise self._prune(trial, f"non-finite score {score}")
        return score
