"""
The benchmark harness: metrics, rows (grpo-env, ppo-shaped, greedy), the shaping wrapper inside the zoo, seeded
evaluation, and a shortened real run of the six rows on CartPole.
"""

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

from grpo_zoo.benchmarking.cli import (
    main,
    parse_algo_budgets,
    parse_args,
    parse_overrides,
    parse_per_env,
    plan,
    write_outputs,
)
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
from grpo_zoo.benchmarking import report
from grpo_zoo.benchmarking.report import COST_COLUMNS, markdown_table, summarize, threshold_metrics
from grpo_zoo.zoo import register
from reward_fns import cartpole

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
    row = {"real_steps": steps, "sim_steps": 2 * steps, "wall_s": steps / 100, "cpu_s": steps / 100, "mean_return": score}
    return {**row, "std_return": 0.0, "mean_length": score}


def test_threshold_metrics():
    curve = [_row(0, 500), _row(100, 480), _row(200, 300), _row(300, 490), _row(400, 500)]
    metrics = threshold_metrics(curve, 475)
    # The untrained evaluation at step 0 does not count; the dip at 200 delays "hold" to 300.
    assert metrics["first"]["real_steps"] == 100
    assert metrics["hold"]["real_steps"] == 300
    assert threshold_metrics(curve[:3], 475)["hold"] is None
    assert threshold_metrics(curve, 501) == {"first": None, "hold": None}
    # A lucky policy before the first update has learned nothing: those evaluations do not count either
    untrained = [{**_row(0, 500), "updates": 0}, {**_row(100, 480), "updates": 0}, {**_row(200, 490), "updates": 4}]
    assert threshold_metrics(untrained, 475)["first"]["real_steps"] == 200


def _final(mean: float, n: int = 3) -> dict[str, float | list[float]]:
    return {"mean": mean, "std": 0.0, "returns": [mean] * n, "lengths": [n] * n, "cpu_s_per_episode": 0.5}


def _result(curve: list[dict[str, float]], final: float, algo: str = "grpo") -> dict:
    result = {"spec": {"env_id": "CartPole-v1", "algo": algo, "seed": 0, "budget": 100, "eval_freq": 100}}
    result.update(curve=curve, real_steps=100, sim_steps=200, train_wall_s=1.0, train_cpu_s=1.0, peak_rss_mb=300.0)
    result.update(sim_per_real=2.0, hyperparams={}, final={"deterministic": _final(final), "stochastic": _final(final - 100)})
    return result


def _greedy_result(final: float) -> dict:
    result = _result([], final, algo="greedy")
    result.update(real_steps=0, sim_steps=0, train_cpu_s=0.0, train_wall_s=0.0, sim_per_real=3.0)
    result["final"] = {"deterministic": {**_final(final), "n_candidates": 2}, "stochastic": None}
    return result


def test_summary_and_table():
    result = _result([_row(0, 9), _row(100, 480)], final=490)
    never = _result([_row(0, 9), _row(100, 20)], final=30)
    summary = summarize([result, never, {"error": "exit code 1"}], 475)
    assert summary["n_failed"] == 1
    assert summary["first_real_steps"] == [100, None]
    assert summary["first_sim_steps"] == [200, None] and summary["hold_cpu_s"] == [1.0, None]
    assert summary["final_deterministic"] == [490, 30] and summary["final_stochastic"] == [390, -70]
    assert summary["last_eval"] == [480, 20] and summary["final_episodes"] == [3]
    table = markdown_table({"grpo": summary})
    assert "grpo (2 seeds), 1 failed" in table
    assert "final (3 ep., det.)" in table and "| 260.0 ± 230.0 | 160.0 ± 230.0 |" in table
    assert "200 (1/2)" in table  # simulator steps to first

    # The greedy controller has no curve and no stochastic policy: those metrics are "—", not "never".
    greedy = summarize([_greedy_result(500)], 475)
    assert greedy["final_deterministic"] == [500] and greedy["final_stochastic"] == []
    assert greedy["first_sim_steps"] == [] and greedy["sim_per_real"] == [3.0]
    row = markdown_table({"greedy": greedy}).splitlines()[-1]
    assert row.startswith("| greedy (1 seed) | 500.0 | — | — | — |") and "never" not in row
    assert "| greedy (1 seed) | 3.0 | — |" in markdown_table({"greedy": greedy}, COST_COLUMNS)


def test_results_md_says_why_rows_are_missing(tmp_path):
    args = parse_args(["--envs", "CartPole-v1", "--final-episodes", "3"])
    meta = {"command": "python -m grpo_zoo.benchmark", "date": "today", "machine": "test", "versions": {}}
    results = [_result([_row(0, 9), _row(100, 480), _row(200, 500)], 490), _greedy_result(500)]
    skipped = {"CartPole-v1": ["ppo-shaped: no reward function here"]}
    markdown = write_outputs(tmp_path, args, results, meta, skipped)
    assert "- no ppo-shaped: no reward function here." in markdown
    assert "episode i reset with seed 1_000_000 + i" in markdown  # the protocol in plain words
    assert "**Simulator step**" in markdown and "(2 candidate actions)" in markdown
    assert (tmp_path / "CartPole-v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_iqm_table_and_replot_from_summary_json(tmp_path):
    """IQM [95% CI] beside mean ± std in results.md and summary.json; a folder without runs/ re-renders from summary.json."""
    args = parse_args(["--envs", "CartPole-v1", "--final-episodes", "3"])
    meta = {"command": "python -m grpo_zoo.benchmark", "date": "today", "machine": "test", "versions": {}}
    results = [_result([_row(0, 9), _row(100 * k, 480), _row(600, 500)], 490 + k) for k in range(1, 6)]
    # PPO scores lower, and two of its five seeds never reach the threshold
    results += [_result([_row(0, 9), _row(3000, 480 if k < 3 else 20)], 100 + k, algo="ppo") for k in range(5)]
    markdown = write_outputs(tmp_path, args, results, meta, {})
    assert "**IQM [95% CI]**" in markdown
    rows = {line.split(" (")[0][2:]: line for line in markdown.splitlines() if "IQM" not in line and "[" in line}
    # grpo's final scores 491..495: IQM of the middle three, its interval apart from PPO's, on the better side
    assert rows["grpo"].startswith("| grpo (5 seeds) | 493.0 [") and "· ahead of ppo |" in rows["grpo"]
    assert "· ahead of" not in rows["ppo"] and "(3/5)" in rows["ppo"]  # 2 of 5 never reached: IQM over all five
    summary = json.loads((tmp_path / "summary.json").read_text())["CartPole-v1"]
    assert summary["grpo"]["iqm"]["final_deterministic"]["iqm"] == pytest.approx(493.0)
    low, high = summary["grpo"]["iqm"]["final_deterministic"]["ci"]
    assert 491 <= low <= 493 <= high <= 495 and summary["grpo"]["iqm"]["first_sim_steps"]["ahead_of"] == ["ppo"]
    assert summary["ppo"]["iqm"]["first_sim_steps"]["ci"][1] == float("inf")

    # A committed folder: results.md and summary.json written before IQM existed, no runs/
    fresh_summary = (tmp_path / "summary.json").read_text()
    old = json.loads(fresh_summary)
    for algo_summary in old["CartPole-v1"].values():
        del algo_summary["iqm"]
    (tmp_path / "summary.json").write_text(json.dumps(old, indent=1))
    blocks = [block for block in markdown.split("\n\n") if "IQM [95% CI]" not in block.split("\n")[0]]
    old_markdown = "\n\n".join(blocks).replace("\n" + report.IQM_PROTOCOL, "")
    assert "IQM" not in old_markdown
    (tmp_path / "results.md").write_text(old_markdown)
    assert not (tmp_path / "runs").exists()
    main(["--replot", "--out", str(tmp_path)])
    assert (tmp_path / "results.md").read_text() == markdown
    assert (tmp_path / "summary.json").read_text() == fresh_summary
    # Nothing to re-render from: one error, nothing written
    with pytest.raises(SystemExit, match="--replot needs"):
        main(["--replot", "--out", str(tmp_path / "empty")])
    assert not (tmp_path / "empty").exists()


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
    # GRPO's default group mode is "time" (no horizon); state groups default to a horizon of 1.
    assert to_env_reward({"reward_function": "f:g"}, "CartPole-v1") == {}
    assert to_env_reward({"group_mode": "state", "reward_function": "f:g"}, "CartPole-v1") == {
        "group_mode": "state",
        "horizon": 32,
    }
    # A longer horizon already ranks actions with the env reward; episode groups have no horizon.
    assert to_env_reward({"horizon": 5, "reward_function": "f:g"}, "CartPole-v1") == {"horizon": 5}
    assert to_env_reward({"group_mode": "episode", "reward_function": "f:g"}, "CartPole-v1") == {"group_mode": "episode"}
    # Without a reward function, grpo-env is the entry itself.
    assert to_env_reward({"group_mode": "state", "horizon": 1}, "CartPole-v1") == {"group_mode": "state", "horizon": 1}

    # MountainCar-v0's shipped entry scores a reward function one step ahead
    shipped = read_entry(grpo_hyperparams_path(), "MountainCar-v0")
    entry = make_variant("grpo-env").hyperparams("MountainCar-v0")
    assert shipped["reward_function"] and shipped.get("horizon", 1) == 1
    assert "reward_function" not in entry and entry["horizon"] == 64
    assert entry == {**{k: v for k, v in shipped.items() if k != "reward_function"}, "horizon": 64}
    assert make_variant("grpo-env", {"horizon": 4}).hyperparams("MountainCar-v0")["horizon"] == 4
    # --reward-function gives the grpo row a reward function (and grpo-env drops it again)
    cartpole = "reward_fns.cartpole:reward"
    assert make_variant("grpo", reward_function=cartpole).hyperparams("CartPole-v1")["reward_function"] == cartpole
    assert "reward_function" not in make_variant("grpo-env", reward_function=cartpole).hyperparams("CartPole-v1")


def test_ppo_shaped_entry():
    grpo = {"reward_function": "reward_fns.cartpole:reward", "reward_weights": [2.0]}
    wrapper = {SHAPING_WRAPPER: {"reward_function": "reward_fns.cartpole:reward", "reward_weights": [2.0]}}
    # No normalisation in the entry: norm_reward on, observations left as they were.
    assert with_shaped_reward({"n_envs": 8}, grpo) == {
        "n_envs": 8,
        "vec_env_wrapper": [wrapper],
        "normalize": {"norm_obs": False, "norm_reward": True},
    }
    # `normalize: true` already normalises rewards (VecNormalize's default): unchanged.
    assert with_shaped_reward({"normalize": True}, grpo)["normalize"] is True
    assert with_shaped_reward({"normalize": "dict(norm_obs=True, norm_reward=False)"}, grpo)["normalize"] == {
        "norm_obs": True,
        "norm_reward": True,
    }
    # The entry's own wrappers stay, outside the shaping wrapper (which must see raw observations).
    entry = with_shaped_reward({"vec_env_wrapper": "my.VecWrapper", "env_wrapper": "my.Wrapper"}, grpo)
    assert entry["vec_env_wrapper"] == [wrapper, "my.VecWrapper"] and entry["env_wrapper"] == "my.Wrapper"
    with pytest.raises(ValueError, match="reward_function"):
        with_shaped_reward({}, {"group_mode": "episode"})

    ppo = read_entry(zoo_hyperparams_path("ppo"), "CartPole-v1")
    shaped = make_variant("ppo-shaped", reward_function="reward_fns.cartpole:reward").hyperparams("CartPole-v1")
    assert shaped["vec_env_wrapper"][0][SHAPING_WRAPPER]["reward_function"] == "reward_fns.cartpole:reward"
    assert {k: v for k, v in shaped.items() if k not in ("vec_env_wrapper", "normalize")} == ppo


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
    specs, skipped = plan(args)
    assert [(spec.seed, spec.algo) for spec in specs] == [(0, "ppo"), (0, "a2c"), (1, "ppo"), (1, "a2c")]
    assert {spec.budget for spec in specs} == {500}
    assert {spec.eval_freq for spec in specs} == {1000}
    assert {(spec.final_episodes, spec.final_seed) for spec in specs} == {(100, 1_000_000)}
    assert skipped == {"CartPole-v1": []}
    args = parse_args(["--algos", "ppo", "a2c", "--seeds", "1", "--ppo-budget", "1000", "--budget", "a2c:CartPole-v1=2e3"])
    assert [spec.budget for spec in plan(args)[0]] == [1000, 2000]
    with pytest.raises(ValueError, match="--budget"):
        parse_algo_budgets(["=5"])
    # A row whose real steps cost more simulator steps may be evaluated more often
    arguments = ["--algos", "grpo", "ppo", "--seeds", "1", "--eval-freq", "2000", "grpo:CartPole-v1=200"]
    assert {spec.algo: spec.eval_freq for spec in plan(parse_args(arguments))[0]} == {"grpo": 200, "ppo": 2000}


def test_plan_rows_need_a_reward_function():
    algos = ["grpo", "grpo-env", "ppo-shaped", "greedy", "ppo"]
    # LunarLander-v3's grpo entry learns from the env reward: no ppo-shaped and no greedy row, and it says why.
    assert read_entry(grpo_hyperparams_path(), "LunarLander-v3").get("reward_function") is None
    arguments = ["--envs", "LunarLander-v3", "CartPole-v1", "--algos", *algos, "--seeds", "2"]
    specs, skipped = plan(parse_args([*arguments, "--reward-function", "CartPole-v1=reward_fns.cartpole:reward"]))
    lunar = [(spec.seed, spec.algo) for spec in specs if spec.env_id == "LunarLander-v3"]
    assert lunar == [(0, "grpo"), (0, "grpo-env"), (0, "ppo"), (1, "grpo"), (1, "grpo-env"), (1, "ppo")]
    assert [line.split(":")[0] for line in skipped["LunarLander-v3"]] == ["ppo-shaped", "greedy"]
    assert "no reward_function" in skipped["LunarLander-v3"][0]
    # CartPole-v1 is given one; the greedy controller does not learn and is deterministic: one run, no budget.
    cartpole = [(spec.seed, spec.algo, spec.budget) for spec in specs if spec.env_id == "CartPole-v1"]
    assert [(seed, algo) for seed, algo, _ in cartpole] == [
        (0, "grpo"), (0, "grpo-env"), (0, "ppo-shaped"), (0, "greedy"), (0, "ppo"),
        (1, "grpo"), (1, "grpo-env"), (1, "ppo-shaped"), (1, "ppo"),
    ]  # fmt: skip
    assert dict((algo, budget) for _, algo, budget in cartpole)["greedy"] == 0
    assert skipped["CartPole-v1"] == []
    assert {spec.reward_function for spec in specs if spec.env_id == "CartPole-v1"} == {"reward_fns.cartpole:reward"}
    # Without it, CartPole-v1's shipped entry learns from the env reward: no ppo-shaped, no greedy
    assert [line.split(":")[0] for line in plan(parse_args(arguments))[1]["CartPole-v1"]] == ["ppo-shaped", "greedy"]


def test_grpo_conf_reward_function_entries():
    # --grpo-conf hyperparams/grpo-reward-fns.yml: the grpo rows, ppo-shaped and greedy read its entries
    reward_fns = REPO / "hyperparams" / "grpo-reward-fns.yml"
    arguments = ["--envs", "CartPole-v1", "--algos", "grpo", "grpo-env", "ppo-shaped", "greedy", "--seeds", "1"]
    specs, skipped = plan(parse_args([*arguments, "--grpo-conf", str(reward_fns)]))
    assert skipped == {"CartPole-v1": []} and [spec.algo for spec in specs] == ["grpo", "grpo-env", "ppo-shaped", "greedy"]
    assert {spec.grpo_config for spec in specs} == {str(reward_fns.resolve())}
    grpo = make_variant("grpo", grpo_config=reward_fns).hyperparams("CartPole-v1")
    assert grpo == read_entry(reward_fns, "CartPole-v1") and grpo["reward_function"] == "reward_fns.cartpole:reward"
    assert make_variant("grpo", grpo_config=reward_fns).config == reward_fns.resolve()
    assert "reward_function" not in make_variant("grpo-env", grpo_config=reward_fns).hyperparams("CartPole-v1")
    shaped = make_variant("ppo-shaped", grpo_config=reward_fns).hyperparams("CartPole-v1")
    assert shaped["vec_env_wrapper"][0][SHAPING_WRAPPER]["reward_function"] == "reward_fns.cartpole:reward"
    with pytest.raises(FileNotFoundError, match="--grpo-conf"):
        make_variant("grpo", grpo_config=REPO / "no-such.yml")


def test_final_seeds_are_unseen():
    with pytest.raises(ValueError, match="--eval-seed"):
        plan(parse_args(["--algos", "ppo", "--final-seed", "10005"]))
    with pytest.raises(ValueError, match="training"):
        plan(parse_args(["--algos", "ppo", "--final-seed", "3"]))  # PPO's 8 CartPole envs reset with seeds 0..7
    plan(parse_args(["--algos", "ppo", "--final-seed", "10010"]))  # right after the curve's 10 episodes: fine


class _RandomPolicy:
    """Stands in for a model: uniform actions; records the first observation of every episode."""

    def __init__(self, action_space: spaces.Space):
        self.action_space = action_space
        self.first_obs: list[np.ndarray] = []

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if episode_start[0]:
            self.first_obs.append(obs[0].copy())
        return np.array([self.action_space.sample()]), state


def test_evaluate_episodes_starts_every_episode_from_its_seed():
    from stable_baselines3.common.env_util import make_vec_env

    from grpo_zoo.benchmarking.evaluation import evaluate_episodes

    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    policy = _RandomPolicy(env.action_space)
    seeds = [1_000_000, 1_000_001, 1_000_002, 1_000_000]
    returns, lengths = evaluate_episodes(policy, env, seeds)  # type: ignore[arg-type]
    expected = [gym.make("CartPole-v1").reset(seed=seed)[0] for seed in seeds]
    assert len(policy.first_obs) == len(seeds) == len(returns)
    for first, reference in zip(policy.first_obs, expected, strict=True):
        np.testing.assert_array_equal(first, reference)
    assert returns == [float(length) for length in lengths]  # CartPole's true reward: +1 per step
    assert not np.array_equal(policy.first_obs[0], policy.first_obs[1])


class _ConstantPolicy:
    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.zeros(len(obs), dtype=np.int64), state


def test_episodes_played_in_batches_are_the_episodes_played_one_by_one():
    from stable_baselines3.common.env_util import make_vec_env

    from grpo_zoo.benchmarking.evaluation import evaluate_episodes

    seeds = [*range(1_000_000, 1_000_007), 5, 6]
    one_by_one = evaluate_episodes(_ConstantPolicy(), make_vec_env("CartPole-v1", n_envs=1), seeds)  # type: ignore[arg-type]
    batched = evaluate_episodes(_ConstantPolicy(), make_vec_env("CartPole-v1", n_envs=4), seeds)  # type: ignore[arg-type]
    assert one_by_one == batched
    assert len(set(one_by_one[1])) > 1  # the episodes differ: each started from its own seed


def _uses_s_a_and_s_next(state, action, next_state):
    """A test reward that depends on all three arguments (CartPole's own ignores the state and action)."""
    return (100 * (next_state[:, 0] - state[:, 0]) + 10 * action[:, 0] + next_state[:, 2]).unsqueeze(-1)


def test_shaped_reward_wrapper():
    from stable_baselines3.common.env_util import make_vec_env

    from grpo_zoo.benchmarking.shaping import ShapedReward

    env = ShapedReward(make_vec_env("CartPole-v1", n_envs=2, seed=0), reward_function=_uses_s_a_and_s_next)
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

    # Box actions: the actions as applied, clipped to the bounds, [B, action_dim]; one call for all envs.
    calls = []

    def action_reward(state, action, next_state):
        calls.append(len(action))
        return action.reshape(-1, 1).clone()

    pendulum = ShapedReward(make_vec_env("Pendulum-v1", n_envs=2, seed=0), reward_function=action_reward)
    pendulum.reset()
    np.testing.assert_array_equal(pendulum.step(np.array([[5.0], [-0.5]], np.float32))[1], [2.0, -0.5])
    assert calls == [2]  # one batched call per step for both envs


def test_ppo_shaped_learner_sees_the_shaped_reward_monitor_the_true_one(tmp_path):
    """Built by rl-zoo3 from the ppo-shaped entry: ShapedReward outside the Monitor, on the training and eval envs."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import VecNormalize

    from grpo_zoo.benchmarking.evaluation import evaluate_episodes
    from grpo_zoo.benchmarking.run import RunSpec, make_experiment
    from grpo_zoo.benchmarking.shaping import ShapedReward

    spec = RunSpec("CartPole-v1", "ppo-shaped", seed=3, budget=256, eval_freq=256)
    entry = make_variant("ppo-shaped", reward_function="reward_fns.cartpole:reward").hyperparams("CartPole-v1")
    exp_manager = make_experiment(spec, entry, "ppo", str(tmp_path))
    model, _ = exp_manager.setup_experiment()
    env = model.get_env()
    assert isinstance(env, VecNormalize) and env.norm_reward and not env.norm_obs
    # The zoo's vec_env_wrapper sits between the envs (each with its Monitor inside) and VecNormalize
    assert isinstance(env.venv, ShapedReward)
    assert all(isinstance(inner, Monitor) for inner in env.venv.venv.envs)

    rng = np.random.default_rng(0)
    obs = env.reset()
    shaped, expected = [], []
    for _ in range(150):
        actions = rng.integers(0, 2, size=env.num_envs)
        next_obs, rewards, dones, infos = env.step(actions)
        original = env.get_original_reward()
        for i in range(env.num_envs):
            # s' of the contract: the terminal observation at an episode's end, not the reset one.
            s_next = infos[i]["terminal_observation"] if dones[i] else next_obs[i]
            reward = cartpole.reward(th.tensor(obs[i][None]), th.tensor([[float(actions[i])]]), th.tensor(s_next[None]))
            expected.append(float(reward))
            assert infos[i]["env_reward"] == 1.0
        shaped += list(original)
        # What the learner gets is the shaped reward, normalised by VecNormalize's return statistics.
        np.testing.assert_allclose(rewards, env.normalize_reward(original), rtol=1e-5)
        obs = next_obs
    np.testing.assert_allclose(shaped, expected, rtol=1e-5, atol=1e-6)
    assert max(shaped) < 0  # CartPole's true reward is +1: the learner never sees it
    monitors = list(env.venv.venv.envs)
    episodes = [
        (r, length) for m in monitors for r, length in zip(m.get_episode_rewards(), m.get_episode_lengths(), strict=True)
    ]
    assert len(episodes) >= 10 and all(r == length for r, length in episodes)  # Monitor: the true +1 per step

    from grpo_zoo.benchmarking.run import _evaluation_envs

    # The benchmark evaluates without the wrapper (outside the Monitors it cannot change a score)
    eval_env = _evaluation_envs(exp_manager, 1)
    assert not isinstance(eval_env.venv, ShapedReward) and isinstance(eval_env.venv.envs[0], Monitor)
    returns, lengths = evaluate_episodes(_RandomPolicy(eval_env.action_space), eval_env, [1_000_000, 1_000_001])  # type: ignore[arg-type]
    assert returns == [float(length) for length in lengths] and min(returns) >= 1


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


ROWS = ("grpo", "grpo-env", "grpo-episode", "ppo", "ppo-shaped", "greedy")


def test_benchmark_short_run(tmp_path):
    """The whole harness on tiny budgets, the six rows on CartPole-v1: tables, PNG, CSV and per-run numbers sane."""
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "grpo_zoo.benchmark", "--envs", "CartPole-v1", "--algos", *ROWS]
    command += ["--seeds", "1", "--first-seed", "1", "--grpo-budget", "512", "--ppo-budget", "512", "--eval-freq", "256"]
    command += ["--eval-episodes", "2", "--final-episodes", "3", "--set", "grpo-env.horizon=8", "--out", str(out)]
    command += ["--reward-function", "CartPole-v1=reward_fns.cartpole:reward"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert process.returncode == 0, process.stdout + process.stderr

    for name in ("results.md", "CartPole-v1.png", "curves.csv", "summary.json", "meta.json"):
        assert (out / name).is_file(), name
    assert (out / "CartPole-v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "results.md").read_text()
    assert all(f"| {algo} (1 seed) |" in markdown for algo in ROWS), markdown
    assert "failed" not in markdown and "final (3 ep., det.)" in markdown and "sim steps to first ≥ thr" in markdown

    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    for algo in ROWS[:-1]:
        curve = [row for row in rows if row["algo"] == algo]
        steps = [int(row["real_steps"]) for row in curve]
        # At least the budget, at most one rollout more (grpo-episode: 8 envs x 128 steps, then running episodes end)
        assert steps[0] == 0 and steps == sorted(steps) and 512 <= steps[-1] < 2000, (algo, steps)
        assert len(curve) >= 3  # at 0, ~256, ~512
        assert all(int(row["sim_steps"]) >= int(row["real_steps"]) for row in curve)
        # The env's true reward (CartPole: +1 per step), also for ppo-shaped whose learner sees a negative one.
        assert all(1 <= float(row["mean_return"]) <= 500 for row in curve)
        assert all(float(row["mean_return"]) == float(row["mean_length"]) for row in curve)
    assert not [row for row in rows if row["algo"] == "greedy"]  # no learning, no curve

    runs = {algo: json.loads((out / "runs" / f"CartPole-v1_{algo}_seed1.json").read_text()) for algo in ROWS}
    for algo, run in runs.items():
        final = run["final"]["deterministic"]
        assert final["seeds"] == [1_000_000, 1_000_001, 1_000_002], algo
        assert final["returns"] == [float(length) for length in final["lengths"]], algo  # true reward
        stochastic = run["final"]["stochastic"]
        assert (stochastic is None) == (algo == "greedy") and (algo == "greedy" or stochastic["seeds"] == final["seeds"])
    assert runs["grpo-env"]["hyperparams"]["horizon"] == 8 and "reward_function" not in runs["grpo-env"]["hyperparams"]
    assert SHAPING_WRAPPER in runs["ppo-shaped"]["hyperparams"]["vec_env_wrapper"]
    assert "'norm_reward': True" in runs["ppo-shaped"]["hyperparams"]["normalize"]
    assert runs["greedy"]["final"]["deterministic"]["returns"] == [500.0] * 3
    assert runs["greedy"]["sim_per_real"] == 3.0

    summary = json.loads((out / "summary.json").read_text())["CartPole-v1"]
    for algo, stats in summary.items():
        assert stats["n_failed"] == 0, algo
        assert 50 < stats["peak_rss_mb"][0] < 4000
        assert len(stats["final_deterministic"]) == 1
    for algo in ROWS[:-1]:
        assert summary[algo]["train_cpu_s"][0] > 0 and summary[algo]["sim_steps_per_cpu_s"][0] > 0
    # State groups spend simulator steps on probes; PPO's simulator steps are its real steps, shaped or not.
    for algo in ("ppo", "ppo-shaped", "grpo-episode"):
        assert summary[algo]["sim_steps"] == summary[algo]["real_steps"], algo
    if read_entry(grpo_hyperparams_path(), "CartPole-v1").get("group_mode", "state") == "state":
        for algo in ("grpo", "grpo-env"):
            assert summary[algo]["sim_steps"][0] > summary[algo]["real_steps"][0], algo

    # --replot rebuilds the outputs from runs/ without running anything.
    (out / "results.md").unlink()
    main([*command[3:], "--replot"])
    assert (out / "results.md").read_text() == markdown


def test_mujoco_v5_envs_use_the_zoo_s_older_entries():
    # rl-zoo3 2.9 has PPO entries for MuJoCo -v4 (InvertedDoublePendulum: -v2) and none for -v5
    from grpo_zoo.benchmarking.config import entry_key

    ppo = zoo_hyperparams_path("ppo")
    assert entry_key(ppo, "HalfCheetah-v5") == "HalfCheetah-v4"
    assert entry_key(ppo, "InvertedDoublePendulum-v5") == "InvertedDoublePendulum-v2"
    assert entry_key(ppo, "CartPole-v1") == "CartPole-v1"
    assert read_entry(ppo, "Hopper-v5") == read_entry(ppo, "Hopper-v4")
    assert entry_key(ppo, "NoSuchEnv-v3") == "default"  # rl-zoo3's ppo.yml has one
