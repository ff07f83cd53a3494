"""The benchmark harness: metrics, configuration, the shaping wrapper and greedy controller, and a shortened real run."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces

from grpo_zoo.benchmarking.cli import parse_algo_budgets, parse_args, parse_overrides, parse_per_env, plan
from grpo_zoo.benchmarking.config import (
    ENV_REWARD_HORIZONS,
    SHAPING_WRAPPER,
    grpo_hyperparams_path,
    make_variant,
    read_entry,
    to_env_reward,
    to_episode_groups,
    with_shaped_reward,
    zoo_hyperparams_path,
)
from grpo_zoo.benchmarking.report import markdown_table, summarize, threshold_metrics
from grpo_zoo.zoo import register

REPO = Path(__file__).resolve().parent.parent
# Issue 2's "tuned zoo PPO" for CartPole-v1: it must be rl-zoo3's own entry, unchanged.
TUNED_PPO_CARTPOLE = {
    "n_envs": 8,
    "n_timesteps": 1e5,
    "policy": "MlpPolicy",
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}


def _row(steps: int, score: float) -> dict[str, float]:
    return {"real_steps": steps, "sim_steps": 2 * steps, "wall_s": steps / 100, "cpu_s": steps / 100, "mean_return": score}


def test_threshold_metrics():
    curve = [_row(0, 500), _row(100, 480), _row(200, 300), _row(300, 490), _row(400, 500)]
    metrics = threshold_metrics(curve, 475)
    # The untrained evaluation at step 0 does not count; the dip at 200 delays "hold" to 300.
    assert metrics["first"]["real_steps"] == 100
    assert metrics["hold"]["real_steps"] == 300
    assert threshold_metrics(curve[:3], 475)["hold"] is None
    assert threshold_metrics(curve, 501) == {"first": None, "hold": None}


def test_summary_and_table():
    result = {"curve": [_row(0, 9), _row(100, 480)], "real_steps": 100, "sim_steps": 200, "train_wall_s": 1.0}
    result.update(train_cpu_s=1.0, peak_rss_mb=300.0)
    never = {**result, "curve": [_row(0, 9), _row(100, 20)]}
    summary = summarize([result, never, {"error": "exit code 1"}], 475)
    assert summary["n_failed"] == 1
    assert summary["first_real_steps"] == [100, None]
    assert summary["sim_steps_per_s"] == [200.0, 200.0]
    table = markdown_table({"grpo": summary})
    assert "grpo (2 seeds), 1 failed" in table
    assert "100 (1/2)" in table


def test_ppo_cartpole_is_issue2_tuned_ppo():
    assert read_entry(zoo_hyperparams_path("ppo"), "CartPole-v1") == TUNED_PPO_CARTPOLE


def test_grpo_hyperparams_path():
    # The benchmark reads the file the zoo hook reads; in a checkout that is <repo>/hyperparams/grpo.yml.
    path = grpo_hyperparams_path()
    assert path == register.grpo_hyperparams_path() and path.is_file()
    assert path.parent.parent == REPO or path.parent.parent.name == "grpo_zoo"
    assert "CartPole-v1" in yaml.safe_load(path.read_text())


def test_to_episode_groups():
    state = {"n_envs": 1, "group_size": 4, "group_mode": "state", "horizon": 1, "reward_function": "reward_fns.x:reward"}
    episode = to_episode_groups(state)
    assert episode == {"n_envs": 8, "group_size": 4, "group_mode": "episode"}
    assert to_episode_groups({"n_envs": 12, "group_size": 4})["n_envs"] == 12
    assert to_episode_groups({"n_envs": 10, "group_size": 4})["n_envs"] == 12


def test_grpo_env_drops_the_reward_function_and_sets_the_horizon():
    state = {"group_mode": "state", "exhaustive": True, "horizon": 1, "reward_function": "f:g", "reward_weights": [1.0]}
    assert to_env_reward(state, "CartPole-v1") == {"group_mode": "state", "exhaustive": True, "horizon": 32}
    assert to_env_reward(state, "Acrobot-v1")["horizon"] == ENV_REWARD_HORIZONS["Acrobot-v1"] == 64
    assert to_env_reward(state, "Unknown-v0")["horizon"] == 32  # the default
    # GRPO's default group mode is "state" and its default horizon 1.
    assert to_env_reward({"reward_function": "f:g"}, "CartPole-v1") == {"horizon": 32}
    # A longer horizon already ranks actions with the env reward; episode groups have no horizon.
    assert to_env_reward({"horizon": 5, "reward_function": "f:g"}, "CartPole-v1") == {"horizon": 5}
    assert to_env_reward({"group_mode": "episode", "reward_function": "f:g"}, "CartPole-v1") == {"group_mode": "episode"}
    # Without a reward function, grpo-env is the entry itself.
    assert to_env_reward({"group_mode": "state", "horizon": 1}, "CartPole-v1") == {"group_mode": "state", "horizon": 1}

    shipped = read_entry(grpo_hyperparams_path(), "CartPole-v1")
    entry = make_variant("grpo-env").hyperparams("CartPole-v1")
    assert shipped["reward_function"] and shipped.get("horizon", 1) == 1
    assert "reward_function" not in entry and entry["horizon"] == 32
    assert entry == {**{k: v for k, v in shipped.items() if k != "reward_function"}, "horizon": 32}
    assert make_variant("grpo-env", {"horizon": 4}).hyperparams("CartPole-v1")["horizon"] == 4


def test_ppo_shaped_entry():
    grpo = {"reward_function": "reward_fns.cartpole:reward", "reward_weights": [2.0]}
    wrapper = {SHAPING_WRAPPER: {"reward_function": "reward_fns.cartpole:reward", "reward_weights": [2.0]}}
    # No normalisation in the entry: norm_reward on, observations left as they were.
    assert with_shaped_reward({"n_envs": 8}, grpo) == {
        "n_envs": 8,
        "env_wrapper": [wrapper],
        "normalize": {"norm_obs": False, "norm_reward": True},
    }
    # `normalize: true` already normalises rewards (VecNormalize's default): unchanged.
    assert with_shaped_reward({"normalize": True}, grpo)["normalize"] is True
    assert with_shaped_reward({"normalize": "dict(norm_obs=True, norm_reward=False)"}, grpo)["normalize"] == {
        "norm_obs": True,
        "norm_reward": True,
    }
    # The entry's own wrappers stay, outside the shaping wrapper (which must see raw observations).
    entry = with_shaped_reward({"env_wrapper": "rl_zoo3.wrappers.TimeFeatureWrapper"}, grpo)
    assert entry["env_wrapper"] == [wrapper, "rl_zoo3.wrappers.TimeFeatureWrapper"]
    with pytest.raises(ValueError, match="reward_function"):
        with_shaped_reward({}, {"group_mode": "episode"})

    ppo = read_entry(zoo_hyperparams_path("ppo"), "CartPole-v1")
    shaped = make_variant("ppo-shaped").hyperparams("CartPole-v1")
    assert shaped["env_wrapper"][0][SHAPING_WRAPPER]["reward_function"] == "reward_fns.cartpole:reward"
    assert {k: v for k, v in shaped.items() if k not in ("env_wrapper", "normalize")} == ppo


def test_cli_parsing_and_interleaving():
    assert parse_per_env(["1e5"], ["A", "B"], "--x") == {"A": 1e5, "B": 1e5}
    assert parse_per_env(["A=3", "B=-85"], ["A", "B"], "--x") == {"A": 3.0, "B": -85.0}
    with pytest.raises(ValueError, match="--x"):
        parse_per_env(["A=abc"], ["A"], "--x")
    assert parse_overrides(["grpo-episode.n_steps=256", "ppo.policy_kwargs=dict(a=1)"]) == {
        "grpo-episode": {"n_steps": 256},
        "ppo": {"policy_kwargs": "dict(a=1)"},
    }
    args = parse_args(["--algos", "ppo", "a2c", "--seeds", "2", "--ppo-budget", "1000", "--budget-scale", "0.5"])
    specs = plan(args)
    assert [(spec.seed, spec.algo) for spec in specs] == [(0, "ppo"), (0, "a2c"), (1, "ppo"), (1, "a2c")]
    assert {spec.budget for spec in specs} == {500}
    assert {spec.eval_freq for spec in specs} == {1000}
    args = parse_args(["--algos", "ppo", "a2c", "--seeds", "1", "--ppo-budget", "1000", "--budget", "a2c:CartPole-v1=2e3"])
    assert [spec.budget for spec in plan(args)] == [1000, 2000]
    with pytest.raises(ValueError, match="--budget"):
        parse_algo_budgets(["=5"])


def _uses_s_a_and_s_next(state, action, next_state):
    """A test reward that depends on all three arguments (CartPole's own ignores the state and action)."""
    return (100 * (next_state[:, 0] - state[:, 0]) + 10 * action[:, 0] + next_state[:, 2]).unsqueeze(-1)


def test_shaped_reward_wrapper():
    from stable_baselines3.common.env_util import make_vec_env

    from grpo_zoo.benchmarking.shaping import ShapedReward

    kwargs = {"reward_function": _uses_s_a_and_s_next}
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0, wrapper_class=ShapedReward, wrapper_kwargs=kwargs)
    obs, rng, n_dones = env.reset(), np.random.default_rng(1), 0
    for _ in range(100):
        actions = rng.integers(0, 2, size=2)
        next_obs, rewards, dones, infos = env.step(actions)
        for i in range(2):
            s_next = infos[i]["terminal_observation"] if dones[i] else next_obs[i]
            expected = 100 * (s_next[0] - obs[i][0]) + 10 * actions[i] + s_next[2]
            assert rewards[i] == pytest.approx(expected, rel=1e-5, abs=1e-5)
        n_dones += int(dones.sum())
        obs = next_obs
    assert n_dones >= 4  # episode ends were checked: s' is the terminal observation, s the reset one after

    # Box actions: the action as applied, clipped to the bounds, [1, action_dim].
    pendulum = ShapedReward(gym.make("Pendulum-v1"), lambda s, a, s_next: a.reshape(1, 1) * th.ones(1, 1))
    pendulum.reset(seed=0)
    assert pendulum.step(np.array([5.0], np.float32))[1] == 2.0
    assert pendulum.step(np.array([-0.5], np.float32))[1] == -0.5


class _CounterEnv(gym.Env):
    """Observation = a class-level step counter: a deep copy shares it, so a probe disturbs the real env."""

    steps = 0
    observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        type(self).steps += 1
        return np.array([type(self).steps], np.float32), 0.0, False, False, {}


def test_greedy_controller():
    from grpo_zoo.benchmarking.greedy import GreedyController, candidate_actions, evaluate_greedy

    # reward_fns/cartpole.py is a controller in itself: 500 from unseen starts with no learning at all.
    seeds = [1_000_000, 1_000_001, 1_000_002]
    score = evaluate_greedy("CartPole-v1", "reward_fns.cartpole:reward", None, seeds)
    assert score["returns"] == [500.0] * 3 and score["mean"] >= 475
    # Every probe is a simulator step: both actions probed at every real step, plus the real step.
    assert score["real_steps"] == 1500 and score["n_candidates"] == 2
    assert score["sim_steps"] == score["real_steps"] * (2 + 1)
    assert score["cpu_s_per_episode"] > 0

    # A reward that prefers pushing left: the controller takes the best-scoring candidate.
    def left(state, action, next_state):
        return -action

    env = gym.make("CartPole-v1")
    controller = GreedyController(env, left)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = controller.step(obs)
    assert obs[1] < -0.5 and controller.probe_steps == 10 and controller.sim_steps == 15  # the cart speeds left

    assert len(candidate_actions(spaces.Box(-2, 2, (1,)))) == 11
    assert len(candidate_actions(spaces.Box(-1, 1, (2,)))) == 121
    many = candidate_actions(spaces.Box(-1, 1, (3,)))
    assert len(many) == 34 and all(np.all(np.abs(a) <= 1) for a in many)
    np.testing.assert_array_equal(many[0], -np.ones(3))
    with pytest.raises(ValueError, match="bounded Box"):
        candidate_actions(spaces.Box(-np.inf, np.inf, (1,)))

    # A copy that does not reproduce the real step is refused, not trusted.
    env = _CounterEnv()
    obs, _ = env.reset()
    with pytest.raises(RuntimeError, match="does not reproduce the real step"):
        GreedyController(env, left).step(obs)


def test_benchmark_short_run(tmp_path):
    """The whole harness on a tiny budget with the real GRPO: table, PNG and CSV written, numbers sane."""
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "grpo_zoo.benchmark", "--envs", "CartPole-v1", "--algos", "grpo", "ppo"]
    command += ["--seeds", "1", "--first-seed", "1", "--grpo-budget", "512", "--ppo-budget", "512", "--eval-freq", "256"]
    command += ["--eval-episodes", "2", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr

    for name in ("results.md", "CartPole-v1.png", "curves.csv", "summary.json", "meta.json"):
        assert (out / name).is_file(), name
    assert (out / "CartPole-v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "results.md").read_text()
    assert "| grpo (1 seeds) |" in markdown and "| ppo (1 seeds) |" in markdown
    assert "failed" not in markdown

    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    for algo in ("grpo", "ppo"):
        curve = [row for row in rows if row["algo"] == algo]
        steps = [int(row["real_steps"]) for row in curve]
        assert steps[0] == 0 and steps == sorted(steps) and 512 <= steps[-1] < 1024, (algo, steps)
        assert len(curve) >= 3  # at 0, ~256, ~512
        assert all(int(row["sim_steps"]) >= int(row["real_steps"]) for row in curve)
        assert all(1 <= float(row["mean_return"]) <= 500 for row in curve)

    summary = json.loads((out / "summary.json").read_text())["CartPole-v1"]
    for algo, stats in summary.items():
        assert stats["n_failed"] == 0, algo
        assert stats["train_wall_s"][0] > 0 and stats["real_steps_per_s"][0] > 0
        assert 50 < stats["peak_rss_mb"][0] < 4000
    # State groups spend simulator steps on probes; PPO's simulator steps are its real steps.
    assert summary["ppo"]["sim_steps"] == summary["ppo"]["real_steps"]
    if read_entry(grpo_hyperparams_path(), "CartPole-v1").get("group_mode", "state") == "state":
        assert summary["grpo"]["sim_steps"][0] > summary["grpo"]["real_steps"][0]
