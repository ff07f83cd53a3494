"""
Benchmark GRPO (the project's grpo.yml) against rl-zoo3's tuned PPO, PPO trained on GRPO's reward function and
that reward's one-step greedy controller, on the same envs and evaluation protocol::

    python -m grpo_zoo.benchmark --envs CartPole-v1 Acrobot-v1 --seeds 5 \\
        --algos grpo grpo-env grpo-episode ppo ppo-shaped greedy

See ``grpo_zoo/benchmarking/cli.py`` for the options and ``benchmarks/README.md`` for the protocol.
"""

from grpo_zoo.benchmarking.cli import main

if __name__ == "__main__":
    main()
