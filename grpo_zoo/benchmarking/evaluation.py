"""
Evaluation on fixed reset seeds, scored with the env's true reward: the learning curve (:class:`EvalRecorder`)
and the final score (:func:`final_score`).

SB3's ``evaluate_policy`` never seeds: it resets its VecEnv once (with whatever seed an earlier ``env.seed`` left
pending) and every later episode starts wherever the env's automatic reset and RNG stream put it. Here every episode
``i`` starts from reset seed ``seeds[i]`` (``env.seed`` then ``env.reset``), so the set of reset seeds is exactly
``seeds`` and two protocols with disjoint seed ranges share no episode start. The score is the Monitor's episode
return (``info["episode"]["r"]``): the env's true reward, under any reward wrapper outside the Monitor or
VecNormalize's reward scaling.
"""

import copy
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize


def evaluate_episodes(
    model: BaseAlgorithm, env: VecEnv, seeds: Sequence[int], deterministic: bool = True
) -> tuple[list[float], list[int]]:
    """
    One episode per reset seed, as ``rl_zoo3.enjoy`` plays them (``model.predict`` with the recurrent state and
    episode starts), scored by the Monitor. The envs of ``env`` play up to ``num_envs`` episodes at a time: a batch
    of consecutive seeds ``s, s+1, ...`` starts with ``env.seed(s); env.reset()`` (env i is reset with ``s + i``),
    and only each env's first episode of the batch counts.

    :param model: the policy
    :param env: a VecEnv of Monitor-wrapped envs (VecNormalize, if any, already synced and frozen)
    :param seeds: episode ``i`` starts from reset seed ``seeds[i]``
    :param deterministic: deterministic (mode) or sampled actions
    :return: the episodes' true returns and lengths, in the order of ``seeds``
    """
    if not all(env.env_is_wrapped(Monitor)):
        raise ValueError("evaluation needs Monitor-wrapped envs (their episode returns are the true reward)")
    returns: list[float] = []
    lengths: list[int] = []
    for batch in _consecutive_batches(list(seeds), env.num_envs):
        n_episodes = len(batch)
        env.seed(batch[0])
        obs = env.reset()
        state, episode_start = None, np.ones(env.num_envs, dtype=bool)
        done: dict[int, tuple[float, int]] = {}
        while len(done) < n_episodes:
            action, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)  # type: ignore[arg-type]
            obs, _, episode_start, infos = env.step(action)
            for i, info in enumerate(infos[:n_episodes]):
                # Only the Monitor's "episode" marks a true end (a wrapper may signal `done` earlier, e.g. a lost life)
                if "episode" in info and i not in done:
                    done[i] = (float(info["episode"]["r"]), int(info["episode"]["l"]))
        returns += [done[i][0] for i in range(n_episodes)]
        lengths += [done[i][1] for i in range(n_episodes)]
    return returns, lengths


def _consecutive_batches(seeds: list[int], size: int) -> list[list[int]]:
    """``seeds`` cut into runs of consecutive seeds of at most ``size`` (``VecEnv.seed(s)`` seeds env i with s + i)."""
    batches: list[list[int]] = []
    for seed in seeds:
        if batches and len(batches[-1]) < size and seed == batches[-1][-1] + 1:
            batches[-1].append(seed)
        else:
            batches.append([seed])
    return batches


def _freeze(train_env: VecEnv | None, eval_env: VecEnv) -> None:
    """
    Copy VecNormalize statistics from the training env and freeze them (as the zoo's eval env is built). As SB3's
    ``sync_envs_normalization``, but the two envs need not have the same wrappers (the evaluation envs of
    ``ppo-shaped`` leave out its reward wrapper).
    """
    vec_normalize = unwrap_vec_normalize(eval_env)
    if vec_normalize is None:
        return
    trained = None if train_env is None else unwrap_vec_normalize(train_env)
    if trained is not None:
        for statistics_name in ("obs_rms", "ret_rms"):  # obs_rms exists only with norm_obs
            if statistics_name in trained.__dict__:
                setattr(vec_normalize, statistics_name, copy.deepcopy(trained.__dict__[statistics_name]))
    vec_normalize.training = False
    vec_normalize.norm_reward = False


def final_score(model: BaseAlgorithm, eval_env: VecEnv, seeds: Sequence[int]) -> dict[str, Any]:
    """
    The final score: the trained policy on ``seeds``, deterministic actions (as ``rl_zoo3.enjoy``) and sampled
    actions on the same episodes.

    :param model: the trained model (its env's VecNormalize statistics are synced into ``eval_env``)
    :param eval_env: a VecEnv of Monitor-wrapped envs
    :param seeds: one reset seed per episode
    :return: ``{"deterministic": ..., "stochastic": ...}``, each with returns, lengths, mean, std and CPU s/episode
    """
    _freeze(model.get_env(), eval_env)
    score: dict[str, Any] = {}
    for name, deterministic in (("deterministic", True), ("stochastic", False)):
        cpu = time.process_time()
        returns, lengths = evaluate_episodes(model, eval_env, seeds, deterministic)
        score[name] = {
            "seeds": list(seeds),
            "returns": returns,
            "lengths": lengths,
            "mean": statistics.fmean(returns),
            "std": statistics.pstdev(returns),
            "cpu_s_per_episode": (time.process_time() - cpu) / len(returns),
        }
    return score


class EvalRecorder(BaseCallback):
    """
    The learning curve: deterministic evaluation on fixed reset seeds every ``eval_freq`` real steps (and at 0 and
    at the end), scored with the env's true reward. The clock excludes the time spent evaluating. Each row
    carries real steps (``num_timesteps``) and simulator steps (plus GRPO's branched probes, its public
    ``num_probe_steps``).

    :param eval_env: a VecEnv of Monitor-wrapped envs
    :param eval_freq: evaluate at the first step >= i * eval_freq
    :param seeds: the evaluation episodes' reset seeds, the same at every evaluation
    """

    def __init__(self, eval_env: VecEnv, eval_freq: int, seeds: Sequence[int]):
        super().__init__()
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.seeds = list(seeds)
        self.rows: list[dict[str, float]] = []
        self.next_eval = 0
        self.trained_since_evaluation = False
        self.eval_wall = self.eval_cpu = 0.0

    def _on_training_start(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.evaluate()
        return True

    def _on_rollout_end(self) -> None:
        # The policy is trained on this rollout next (and GRPO's probes of it are counted now): an evaluation made
        # during the rollout no longer describes the final policy
        self.trained_since_evaluation = True

    def _on_training_end(self) -> None:
        if not self.rows or self.trained_since_evaluation:
            self.evaluate()

    def evaluate(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        train_wall = wall - self.wall0 - self.eval_wall
        train_cpu = cpu - self.cpu0 - self.eval_cpu
        _freeze(self.model.get_env(), self.eval_env)
        returns, lengths = evaluate_episodes(self.model, self.eval_env, self.seeds, deterministic=True)
        real_steps = int(self.model.num_timesteps)
        probe_steps = int(getattr(self.model, "num_probe_steps", 0))
        row = {
            "real_steps": real_steps,
            "sim_steps": real_steps + probe_steps,
            "wall_s": train_wall,
            "cpu_s": train_cpu,
            "mean_return": statistics.fmean(returns),
            "std_return": statistics.pstdev(returns),
            "mean_length": statistics.fmean(lengths),
            "updates": int(getattr(self.model, "_n_updates", 0)),  # policy updates so far
        }
        if self.rows and self.rows[-1]["real_steps"] == real_steps:
            # The evaluation at the end, after the last rollout's update: it replaces the one made during that rollout
            self.rows[-1] = row
        else:
            self.rows.append(row)
        self.next_eval = (real_steps // self.eval_freq + 1) * self.eval_freq
        self.trained_since_evaluation = False
        self.eval_wall += time.perf_counter() - wall
        self.eval_cpu += time.process_time() - cpu
