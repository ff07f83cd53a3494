"""
Multi-seed objective for GRPO studies, built on rl_zoo3's ``ExperimentManager`` (envs, wrappers, YAML).

Each seed of a trial spends the same budget of simulator steps, real + probe steps (``-n``, else the YAML
``n_timesteps``; :class:`grpo_zoo.zoo.budget.SimulatorBudget`), and the trial records what it spent. A trial's score
is the mean, median or worst of its seeds' scores (``--seed-statistic``): the worst over 3 seeds or more chooses an
entry for working on every seed, not for one lucky seed.

Imports point down: ``grpo_zoo.zoo`` (registration, patches, search space, budget) and
:mod:`grpo_zoo.tuning.storage`; rl_zoo3 and torch when a study runs.
"""

import argparse
import contextlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

from grpo_zoo.tuning.storage import INTERRUPTED_ATTR, WORKER_ATTR, worker_name
from grpo_zoo.zoo.hook import register_grpo
from grpo_zoo.zoo.sampler import sample_grpo_params, sampler_context

# Score of one seed from its evaluations
STATISTICS = ("last", "best", "mean")
# Score of a trial from its seeds' scores
SEED_STATISTICS = ("mean", "median", "worst")


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


def seed_score(scores: list[float], seed_statistic: str) -> float:
    """
    The score of a trial from its seeds' scores.

    :param scores: one score per seed
    :param seed_statistic: "mean", "median" or "worst" (the minimum: every seed must work)
    :return: the trial's score
    """
    if seed_statistic == "worst":
        return float(np.min(scores))
    if seed_statistic == "median":
        return float(np.median(scores))
    return float(np.mean(scores))


def _make_eval_callback(
    eval_env: Any,
    trial: optuna.Trial,
    step_offset: int,
    n_evaluations: int,
    report: Callable[[list[float]], float],
    **kwargs: Any,
) -> Any:
    from rl_zoo3.callbacks import TrialEvalCallback
    from stable_baselines3.common.callbacks import EvalCallback

    class SeedEvalCallback(TrialEvalCallback):
        """
        rl_zoo3's ``TrialEvalCallback``, reporting seed ``k`` at steps ``k * n_evaluations + 1...`` the value
        ``report(values)`` of its evaluations so far (rl_zoo3 reports the last one), and keeping them. Evaluation
        ``e`` is due at ``e / n_evaluations`` of the simulator budget (``SimulatorBudget``, which may skip a step
        when a rollout's probes pass two evaluation points at once).
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
            # TrialEvalCallback._on_step, with report(values) for the pruner instead of the last evaluation
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                EvalCallback._on_step(self)
                self.eval_idx += 1
                self.values.append(float(self.last_mean_reward))
                self.trial.report(report(self.values), self.eval_idx)
                if self.trial.should_prune():
                    self.is_pruned = True
                    return False
            return True

    return SeedEvalCallback()


class MultiSeedObjective:
    """
    Score of a trial: the mean, median or worst (``seed_statistic``) over ``seeds`` of a statistic (last, best or
    mean) of each seed's evaluations.

    Seeds run one after another, each until it has spent ``n_timesteps`` simulator steps (real + probe steps);
    evaluation ``e`` of seed ``k`` is made at ``e / n_evaluations`` of that budget and reported at step
    ``k * n_evaluations + e``, so the pruner compares trials at the same seed and cost (:meth:`intermediate_value`
    says what is reported). Invalid combinations and diverging runs (GRPO's ``ValueError`` on a non-finite reward
    or loss) are pruned with the reason in ``pruned_reason``.

    Each seed's evaluations and score are in the trial's user attributes ``seed_evaluations`` and ``seed_scores``.
    What a trial spent, its seeds summed, is in ``sim_steps``, ``real_steps`` and ``cpu_seconds`` (CPU seconds of
    training, evaluations excluded), per seed in ``seed_sim_steps``, ...

    :param exp_manager: experiment manager from :func:`make_exp_manager`
    :param seeds: seeds of each trial (the same for every trial: common random numbers)
    :param statistic: "last", "best" or "mean" of the evaluations of one seed
    :param seed_statistic: "mean", "median" or "worst" of the seeds' scores
    """

    def __init__(self, exp_manager: Any, seeds: list[int], statistic: str = "mean", seed_statistic: str = "mean") -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"`statistic` must be one of {STATISTICS}, got statistic={statistic!r}")
        if seed_statistic not in SEED_STATISTICS:
            raise ValueError(f"`seed_statistic` must be one of {SEED_STATISTICS}, got seed_statistic={seed_statistic!r}")
        self.exp_manager = exp_manager
        self.seeds = seeds
        self.statistic = statistic
        self.seed_statistic = seed_statistic

    def intermediate_value(self, seed_scores: list[float], evaluations: list[float]) -> float:
        """
        What the pruner sees after an evaluation of the seed that is running.

        - median and worst: the trial's score if it ended now, the seed statistic over the finished seeds' scores
          and the running seed's statistic so far. Seeds run in sequence, so under "worst" a trial whose first seed
          failed reports that failure at every later step, where the next seed's evaluations alone would hide it;
        - mean: the running seed's evaluation, compared with the same evaluation of the same seed of other trials
          (the terms of the mean, one by one), as before ``--seed-statistic`` existed: resumed studies prune alike.

        :param seed_scores: scores of the seeds that have finished
        :param evaluations: evaluations of the running seed so far
        :return: the intermediate value
        """
        if self.seed_statistic == "mean":
            return float(evaluations[-1])
        return seed_score([*seed_scores, _statistic(evaluations, self.statistic)], self.seed_statistic)

    def score(self, seed_scores: list[float]) -> float:
        """:return: the trial's score from its seeds' scores (``seed_statistic``)"""
        return seed_score(seed_scores, self.seed_statistic)

    def _prune(self, trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
        trial.set_user_attr("pruned_reason", reason)
        print(f"Trial {trial.number} pruned: {reason}", flush=True)
        return optuna.TrialPruned(reason)

    def _run_seed(self, trial: optuna.Trial, kwargs: dict[str, Any], seed: int, seed_scores: list[float]) -> list[float]:
        """
        Train and evaluate one seed.

        :param seed_scores: scores of the seeds already run (the pruner's intermediate values read them)
        :return: the seed's evaluations
        """
        from rl_zoo3.utils import ALGOS

        from grpo_zoo.zoo.budget import SimulatorBudget

        em = self.exp_manager
        n_evaluations = int(em.n_evaluations)
        finished = list(seed_scores)
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
                len(finished) * n_evaluations,
                n_evaluations,
                lambda evaluations: self.intermediate_value(finished, evaluations),
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
            return callback.values
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
        evaluations: list[list[float]] = []
        try:
            for seed in self.seeds:
                evaluations.append(self._run_seed(trial, kwargs, seed, scores))
                scores.append(_statistic(evaluations[-1], self.statistic))
                trial.set_user_attr("seed_evaluations", evaluations)
                trial.set_user_attr("seed_scores", scores)
        except KeyboardInterrupt:
            # Optuna marks it FAIL: a resumed study runs it again (see grpo_zoo.tuning.storage.retry_interrupted_trials)
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise
        score = self.score(scores)
        trial.set_user_attr("score_std", float(np.std(scores)))
        if not np.isfinite(score):
            raise self._prune(trial, f"non-finite score {score}")
        return score
