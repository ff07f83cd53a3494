"""
One benchmark run (one algorithm, env and seed), meant to be executed in its own process so that peak memory
is per run: ``python -m grpo_zoo.benchmarking.run SPEC.json RESULT.json``.

The model and its envs come from rl-zoo3's ``ExperimentManager`` (schedules, ``policy_kwargs``, ``normalize``,
``n_envs`` exactly as ``python -m rl_zoo3.train`` would), evaluation from :class:`EvalRecorder`.
"""

import argparse
import json
import resource
import statistics
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
    eval_seed: int = 10_000  # the same evaluation episodes for every algorithm, seed and evaluation
    overrides: dict[str, Any] = field(default_factory=dict)


def _make_callback_class():
    # Deferred so that importing this module (e.g. from the CLI parent) does not import torch / SB3.
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import sync_envs_normalization

    class EvalRecorder(BaseCallback):
        """
        Deterministic evaluation on fixed episode seeds every ``eval_freq`` real steps (and at 0 and at the end),
        scored with the env's true reward (the Monitor's episode return, under any reward shaping or
        normalisation). The clock excludes the time spent evaluating. VecNormalize statistics are copied from
        the training env first, as the zoo's EvalCallback does.
        """

        def __init__(self, eval_env, eval_freq: int, n_eval_episodes: int, eval_seed: int):
            super().__init__()
            self.eval_env = eval_env
            self.eval_freq = eval_freq
            self.n_eval_episodes = n_eval_episodes
            self.eval_seed = eval_seed
            self.rows: list[dict[str, float]] = []
            self.next_eval = 0
            self.eval_wall = self.eval_cpu = 0.0

        def _on_training_start(self) -> None:
            self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
            self.evaluate()

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.evaluate()
            return True

        def _on_training_end(self) -> None:
            if not self.rows or self.rows[-1]["real_steps"] != self.model.num_timesteps:
                self.evaluate()

        def evaluate(self) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            train_wall = wall - self.wall0 - self.eval_wall
            train_cpu = cpu - self.cpu0 - self.eval_cpu
            sync_envs_normalization(self.model.get_env(), self.eval_env)
            self.eval_env.seed(self.eval_seed)
            returns, lengths = evaluate_policy(
                self.model,
                self.eval_env,
                n_eval_episodes=self.n_eval_episodes,
                deterministic=True,
                return_episode_rewards=True,
                warn=False,
            )
            real_steps = int(self.model.num_timesteps)
            probe_steps = int(getattr(self.model, "num_probe_steps", 0))
            self.rows.append(
                {
                    "real_steps": real_steps,
                    "sim_steps": real_steps + probe_steps,
                    "wall_s": train_wall,
                    "cpu_s": train_cpu,
                    "mean_return": statistics.fmean(returns),
                    "std_return": statistics.pstdev(returns),
                    "mean_length": statistics.fmean(lengths),
                }
            )
            self.next_eval = (real_steps // self.eval_freq + 1) * self.eval_freq
            self.eval_wall += time.perf_counter() - wall
            self.eval_cpu += time.process_time() - cpu

    return EvalRecorder


def register_grpo() -> None:
    """Make ``--algo grpo`` known to rl-zoo3 through the project's zoo hook, or directly if it is unavailable."""
    try:
        from grpo_zoo.zoo import hook
    except ImportError:
        pass
    else:
        hook.install(force=True)  # registers with rl_zoo3 modules as they are (or were) imported
    from rl_zoo3.utils import ALGOS

    if "grpo" not in ALGOS:
        from grpo_zoo import GRPO

        ALGOS["grpo"] = GRPO


def run(spec: RunSpec) -> dict[str, Any]:
    """
    Train one model and evaluate it along the way.

    :param spec: the run
    :return: the curve (one row per evaluation) and totals, JSON-serialisable
    """
    import torch as th

    th.set_num_threads(1)
    from grpo_zoo.benchmarking.config import make_variant

    variant = make_variant(spec.algo, spec.overrides)
    if variant.zoo_algo == "grpo":
        register_grpo()
    from rl_zoo3.exp_manager import ExperimentManager

    entry = variant.hyperparams(spec.env_id)

    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as tmp:
        # The (possibly edited) entry goes through the zoo's own reading and preprocessing.
        config = Path(tmp) / f"{variant.zoo_algo}.yml"
        config.write_text(yaml.safe_dump({spec.env_id: entry}))
        exp_manager = ExperimentManager(
            argparse.Namespace(),
            variant.zoo_algo,
            spec.env_id,
            log_folder=tmp,
            n_timesteps=spec.budget,
            eval_freq=0,  # the zoo's EvalCallback is replaced by EvalRecorder
            seed=spec.seed,
            log_interval=-1,  # the model's default (ExperimentManager's 0 means every iteration)
            verbose=0,
            config=str(config),
            device="cpu",
        )
        model, _ = exp_manager.setup_experiment()  # type: ignore[misc]
        eval_env = exp_manager.create_envs(1, eval_env=True)
        recorder = _make_callback_class()(eval_env, spec.eval_freq, spec.n_eval_episodes, spec.eval_seed)
        exp_manager.callbacks.append(recorder)
        exp_manager.learn(model)
        eval_env.close()

    last = recorder.rows[-1]
    return {
        "spec": asdict(spec),
        "zoo_algo": variant.zoo_algo,
        "config": str(variant.config),
        "hyperparams": {key: value if isinstance(value, (int, float, bool)) else str(value) for key, value in entry.items()},
        "curve": recorder.rows,
        "real_steps": last["real_steps"],
        "sim_steps": last["sim_steps"],
        "train_wall_s": last["wall_s"],
        "train_cpu_s": last["cpu_s"],
        "eval_wall_s": recorder.eval_wall,
        "total_wall_s": time.perf_counter() - wall0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }


def main(argv: list[str] | None = None) -> None:
    spec_path, result_path = argv or sys.argv[1:]
    spec = RunSpec(**json.loads(Path(spec_path).read_text()))
    Path(result_path).write_text(json.dumps(run(spec), indent=1))


if __name__ == "__main__":
    main()
