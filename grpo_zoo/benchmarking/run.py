"""
One benchmark run (one algorithm, env and seed), meant to be executed in its own process so that peak memory
is per run: ``python -m grpo_zoo.benchmarking.run SPEC.json RESULT.json``.

The model and its envs come from rl-zoo3's ``ExperimentManager`` (schedules, ``policy_kwargs``, ``normalize``,
``n_envs``, ``env_wrapper`` exactly as ``python -m rl_zoo3.train`` would), the learning curve and the final score
from :mod:`grpo_zoo.benchmarking.evaluation`; the ``greedy`` row from :mod:`grpo_zoo.benchmarking.greedy`.
"""

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class RunSpec:
    """Everything that defines one run."""

    env_id: str
    algo: str  # a benchmark variant name, see config.make_variant
    seed: int
    budget: int  # real env steps
    eval_freq: int  # evaluate every k real steps
    n_eval_episodes: int = 10
    eval_seed: int = 10_000  # curve episode i starts from reset seed eval_seed + i, at every evaluation
    final_episodes: int = 100
    final_seed: int = 1_000_000  # final episode i starts from reset seed final_seed + i
    overrides: dict[str, Any] = field(default_factory=dict)
    reward_function: str | None = None  # the comparison's reward function (--reward-function), None: grpo.yml's
    grpo_config: str | None = None  # the grpo entries' yml file (--grpo-conf), None: the shipped grpo.yml


def make_experiment(spec: RunSpec, entry: dict[str, Any], zoo_algo: str, log_folder: str) -> Any:
    """
    rl-zoo3's ``ExperimentManager`` for ``entry``: it goes through the zoo's own reading and preprocessing (a
    one-entry yml file in ``log_folder``), so schedules, ``policy_kwargs``, ``normalize``, ``n_envs`` and
    ``env_wrapper`` are exactly what ``python -m rl_zoo3.train`` would make of them.

    :param spec: the run (env, seed, budget)
    :param entry: the (edited) yml entry
    :param zoo_algo: the zoo algorithm that trains it
    :param log_folder: where the zoo may write
    :return: the experiment manager (``setup_experiment()`` not yet called)
    """
    if zoo_algo == "grpo":
        from grpo_zoo.zoo.hook import register_grpo

        register_grpo()
    from rl_zoo3.exp_manager import ExperimentManager

    config = Path(log_folder) / f"{zoo_algo}.yml"
    config.write_text(yaml.safe_dump({spec.env_id: entry}))
    return ExperimentManager(
        argparse.Namespace(),
        zoo_algo,
        spec.env_id,
        log_folder=log_folder,
        n_timesteps=spec.budget,
        eval_freq=0,  # the zoo's EvalCallback is replaced by EvalRecorder
        seed=spec.seed,
        log_interval=-1,  # the model's default (ExperimentManager's 0 means every iteration)
        verbose=0,
        config=str(config),
        device="cpu",
    )


# Evaluation episodes played at once, one per env of the evaluation VecEnv
EVAL_BATCH = 50


def _evaluation_envs(exp_manager: Any, n_envs: int) -> Any:
    """
    The zoo's evaluation envs, without the ``ShapedReward`` wrapper of ``ppo-shaped``: it sits outside the Monitors,
    whose true returns are the score, so it cannot change one, and it would cost a reward call per step.
    """
    vec_env_wrapper = exp_manager.vec_env_wrapper
    exp_manager.vec_env_wrapper = None
    try:
        return exp_manager.create_envs(n_envs, eval_env=True)
    finally:
        exp_manager.vec_env_wrapper = vec_env_wrapper


def train_and_score(spec: RunSpec, entry: dict[str, Any], zoo_algo: str) -> dict[str, Any]:
    """
    Train with the zoo, recording the learning curve, then score the final policy.

    :return: the curve (one row per evaluation), the final score and training totals
    """
    from grpo_zoo.benchmarking.evaluation import EvalRecorder, final_score

    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as tmp:
        exp_manager = make_experiment(spec, entry, zoo_algo, tmp)
        model, _ = exp_manager.setup_experiment()  # type: ignore[misc]
        # Episodes are played EVAL_BATCH at a time, one per env (one batched predict per step)
        eval_env = _evaluation_envs(exp_manager, min(spec.n_eval_episodes, EVAL_BATCH))
        recorder = EvalRecorder(eval_env, spec.eval_freq, range(spec.eval_seed, spec.eval_seed + spec.n_eval_episodes))
        exp_manager.callbacks.append(recorder)
        exp_manager.learn(model)
        eval_env.close()
        final_env = _evaluation_envs(exp_manager, min(spec.final_episodes, EVAL_BATCH))
        final = final_score(model, final_env, range(spec.final_seed, spec.final_seed + spec.final_episodes))
        final_env.close()
    last = recorder.rows[-1]
    return {
        "curve": recorder.rows,
        "final": final,
        "real_steps": last["real_steps"],
        "sim_steps": last["sim_steps"],
        "sim_per_real": last["sim_steps"] / max(1, last["real_steps"]),
        "train_wall_s": last["wall_s"],
        "train_cpu_s": last["cpu_s"],
        "eval_wall_s": recorder.eval_wall,
    }


def greedy_score(spec: RunSpec, entry: dict[str, Any]) -> dict[str, Any]:
    """The greedy controller on the final episodes: no training, no curve."""
    from grpo_zoo.benchmarking.greedy import evaluate_greedy

    seeds = range(spec.final_seed, spec.final_seed + spec.final_episodes)
    score = evaluate_greedy(spec.env_id, entry.get("reward_function"), entry.get("reward_weights"), seeds)
    return {
        "curve": [],
        "final": {"deterministic": score, "stochastic": None},
        "real_steps": 0,
        "sim_steps": 0,
        "sim_per_real": score["sim_steps"] / score["real_steps"],
        "train_wall_s": 0.0,
        "train_cpu_s": 0.0,
        "eval_wall_s": 0.0,
    }


def run(spec: RunSpec) -> dict[str, Any]:
    """
    One run: train and evaluate a zoo algorithm, or play the greedy controller.

    :param spec: the run
    :return: the curve (one row per evaluation), the final score and totals, JSON-serialisable
    """
    import torch as th

    th.set_num_threads(1)
    from grpo_zoo.benchmarking.config import entry_key, make_variant

    variant = make_variant(spec.algo, spec.overrides, spec.reward_function, spec.grpo_config)
    entry = variant.hyperparams(spec.env_id)
    wall0 = time.perf_counter()
    if variant.zoo_algo is None:
        result = greedy_score(spec, entry)
    else:
        result = train_and_score(spec, entry, variant.zoo_algo)
    return {
        "spec": asdict(spec),
        "zoo_algo": variant.zoo_algo,
        "config": str(variant.config),
        "entry_key": entry_key(variant.config, spec.env_id),  # the yml entry used (e.g. a -v4 one for a -v5 env)
        "hyperparams": {key: value if isinstance(value, (int, float, bool)) else str(value) for key, value in entry.items()},
        **result,
        "total_wall_s": time.perf_counter() - wall0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }


def main(argv: list[str] | None = None) -> None:
    spec_path, result_path = argv or sys.argv[1:]
    spec = RunSpec(**json.loads(Path(spec_path).read_text()))
    Path(result_path).write_text(json.dumps(run(spec), indent=1))


if __name__ == "__main__":
    main()
