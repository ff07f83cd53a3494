"""
What the constructors' defaults learn from the env reward: ``GRPO("MlpPolicy", env_id, seed=s)`` and nothing else,
beside ``PPO("MlpPolicy", env_id, seed=s)``, as a Python user coming from PPO would try it::

    python -m grpo_zoo.benchmarking.defaults --envs CartPole-v1 Acrobot-v1 Pendulum-v1 --seeds 3 --budget 100000

One single-threaded run after another; the score of a policy is the mean return over ``--final-episodes``
deterministic episodes from reset seeds ``--final-seed`` + i (never used in training), before and after training.
Prints a markdown table.
"""

import argparse
import statistics
import time

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from grpo_zoo import GRPO
from grpo_zoo.benchmarking.evaluation import evaluate_episodes

ALGOS: dict[str, type[GRPO] | type[PPO]] = {"grpo": GRPO, "ppo": PPO}


def score(model: BaseAlgorithm, env_id: str, first_seed: int, n_episodes: int) -> float:
    """Mean true return of the deterministic policy over ``n_episodes`` episodes from reset seeds ``first_seed + i``."""
    returns, _ = evaluate_episodes(model, make_vec_env(env_id, n_envs=10), range(first_seed, first_seed + n_episodes))
    return statistics.fmean(returns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
    parser.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=100_000, help="real env steps of every run")
    parser.add_argument("--final-episodes", type=int, default=100)
    parser.add_argument("--final-seed", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    print(f"Defaults, {args.budget:,} steps, score over {args.final_episodes} unseen episodes (deterministic)\n")
    print("| env | algo | seed | untrained | trained | train CPU s |")
    print("|---|---|---|---|---|---|")
    for env_id in args.envs:
        for seed in range(args.seeds):
            for algo in args.algos:
                model = ALGOS[algo]("MlpPolicy", env_id, seed=seed)
                before = score(model, env_id, args.final_seed, args.final_episodes)
                start = time.process_time()
                model.learn(args.budget)
                cpu = time.process_time() - start
                after = score(model, env_id, args.final_seed, args.final_episodes)
                print(f"| {env_id} | {algo} | {seed} | {before:.1f} | {after:.1f} | {cpu:.0f} |", flush=True)


if __name__ == "__main__":
    main()
