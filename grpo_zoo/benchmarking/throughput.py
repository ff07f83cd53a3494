"""
Simulator throughput of GRPO's state groups against the env's own step loop, in one process, one thread::

    python -m grpo_zoo.benchmarking.throughput --envs CartPole-v1 Pendulum-v1 HalfCheetah-v5 --repeats 3

- raw: ``gym.make(env_id)`` stepped with pre-sampled random actions (resetting at episode ends), steps per CPU s;
- GRPO: ``GRPO.learn`` with state groups (``--group-size``, ``--horizon``, ``--branch-fraction``), training
  included, in simulator steps (real steps + probe steps) per CPU second; and the probes alone (their steps per
  CPU second of the probe phase, ``GRPO.probe_cpu_seconds``), which is what branching costs. Members that took
  the same action share a probe, so on a Discrete env with few actions most of a rollout's time is its real steps
  (a policy forward per step, as in PPO) and the first ratio measures those.

The two are measured in turn (raw, GRPO, raw, GRPO, ...) and the table gives the median of each and of the
ratios pair by pair, so that a shared, noisy machine drifts both alike.
"""

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np


def raw_rate(env_id: str, seconds: float, seed: int = 0) -> float:
    """Steps per CPU second of the env's own step loop."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(1000)]
    n_steps, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        n_steps += len(actions)
    return n_steps / (time.process_time() - start)


def grpo_rate(env_id: str, args: argparse.Namespace, seed: int = 0) -> tuple[float, float, float]:
    """
    :return: simulator steps (real + probes) per CPU second of GRPO training, probe steps per CPU second of the
        probes alone, and probe steps per real step
    """
    from stable_baselines3.common.env_util import make_vec_env

    from grpo_zoo import GRPO

    model = GRPO(
        "MlpPolicy",
        make_vec_env(env_id, n_envs=args.n_envs, seed=seed),
        group_size=args.group_size,
        horizon=args.horizon,
        branch_fraction=args.branch_fraction,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        seed=seed,
    )
    model.learn(args.n_steps * args.n_envs)  # warm-up: the member envs are made on the first rollout
    real, probes, probe_cpu, start = model.num_timesteps, model.num_probe_steps, model.probe_cpu_seconds, time.process_time()
    model.learn(args.real_steps, reset_num_timesteps=False)
    elapsed = time.process_time() - start
    real, probes, probe_cpu = model.num_timesteps - real, model.num_probe_steps - probes, model.probe_cpu_seconds - probe_cpu
    return (real + probes) / elapsed, probes / max(probe_cpu, 1e-9), probes / real


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--repeats", type=int, default=3, help="raw/GRPO pairs per env")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--branch-fraction", type=float, default=1.0)
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--n-steps", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--n-epochs", type=int, default=1)
    parser.add_argument("--real-steps", type=int, default=1024, help="real steps of each timed GRPO run")
    parser.add_argument("--raw-seconds", type=float, default=2.0, help="CPU seconds of each raw measurement")
    args = parser.parse_args(argv)

    import torch as th

    th.set_num_threads(1)
    print(
        f"State groups G={args.group_size}, horizon {args.horizon}, branch fraction {args.branch_fraction}, "
        f"{args.n_envs} envs x {args.n_steps} steps, {args.n_epochs} epoch(s), batch {args.batch_size}; "
        f"median of {args.repeats} interleaved pairs, CPU seconds, one thread."
    )
    print()
    print(
        "| env | raw env steps / CPU s | GRPO training, simulator steps / CPU s | ratio | probes alone, steps / CPU s "
        "| ratio | probe steps per real step |"
    )
    print("|---|---|---|---|---|---|---|")
    for env_id in args.envs:
        raws, grpos, ratios, probe_rates, probe_ratios, probes = [], [], [], [], [], []
        for _ in range(args.repeats):
            raws.append(raw_rate(env_id, args.raw_seconds))
            rate, probe_rate, probes_per_step = grpo_rate(env_id, args)
            grpos.append(rate)
            ratios.append(rate / raws[-1])
            probe_rates.append(probe_rate)
            probe_ratios.append(probe_rate / raws[-1])
            probes.append(probes_per_step)
        print(
            f"| {env_id} | {statistics.median(raws):,.0f} | {statistics.median(grpos):,.0f} | "
            f"{statistics.median(ratios):.2f}x | {statistics.median(probe_rates):,.0f} | "
            f"{statistics.median(probe_ratios):.2f}x | {np.median(probes):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
