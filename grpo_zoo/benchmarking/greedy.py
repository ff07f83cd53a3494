"""
The ``greedy`` row: a reward function of (s, a, s') used as a one-step greedy controller, with no learning.

At every real step, for every candidate action, a copy of the simulator (``copy.deepcopy`` of
``env.unwrapped``) takes one step with that action; the real env then takes the action whose copy scored best
under ``reward_function(s, a, s')`` (one batched call over the candidates). Every probe step costs what a real
step costs: ``sim_steps = real_steps * (n_candidates + 1)``. The copy is trusted only while the probe of the
chosen action reproduces the real step's observation exactly (checked at every step; a copy that cannot step,
e.g. a Box2D world whose bodies were lost, is a clear error). Copies carry the env's RNG state, so even a
stochastic simulator would replay the noise the real step then draws: the controller sees one step ahead.

Candidates: every action of a Discrete space; for a Box of at most ``MAX_GRID_DIMS`` dimensions a grid of
``GRID_POINTS`` points per dimension over the bounds; above that, ``N_SAMPLES`` uniform samples (fixed seed)
plus the all-low and all-high corners.
"""

import copy
import itertools
import statistics
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from grpo_zoo.benchmarking.shaping import action_batch, obs_batch
from grpo_zoo.rewards import RewardModel, RewardSpec

GRID_POINTS = 11
MAX_GRID_DIMS = 2
N_SAMPLES = 32
SAMPLES_SEED = 0


def candidate_actions(action_space: spaces.Space) -> list[Any]:
    """
    :param action_space: Discrete or bounded Box
    :return: the actions the controller compares at every step (the same list at every step)
    """
    if isinstance(action_space, spaces.Discrete):
        return [int(action_space.start) + i for i in range(int(action_space.n))]
    if not isinstance(action_space, spaces.Box) or not action_space.is_bounded():
        raise ValueError(f"the greedy controller needs a Discrete or bounded Box action space, got {action_space}")
    low, high = action_space.low.ravel(), action_space.high.ravel()
    if low.size <= MAX_GRID_DIMS:
        axes = [np.linspace(lo, hi, GRID_POINTS) for lo, hi in zip(low, high, strict=True)]
        points = [np.array(point) for point in itertools.product(*axes)]
    else:
        rng = np.random.default_rng(SAMPLES_SEED)
        points = [low, high, *rng.uniform(low, high, size=(N_SAMPLES, low.size))]
    return [point.astype(action_space.dtype).reshape(action_space.shape) for point in points]


class GreedyController:
    """
    One-step greedy control by a reward function on deep copies of the env's simulator.

    :param env: the real env (its ``unwrapped`` simulator is copied for the probes)
    :param reward_function: import path, callable, or a list of them (as GRPO's ``reward_function``)
    :param reward_weights: one weight per reward function (default: all 1)
    """

    def __init__(self, env: gym.Env, reward_function: RewardSpec, reward_weights: Sequence[float] | None = None):
        self.env = env
        self.reward_model = RewardModel(reward_function, reward_weights)
        self.candidates = candidate_actions(env.action_space)
        self.candidate_tensor = action_batch(env.action_space, np.stack([np.asarray(a) for a in self.candidates]))
        self.real_steps = 0
        self.probe_steps = 0

    @property
    def sim_steps(self) -> int:
        """Every simulator step: real steps and probes."""
        return self.real_steps + self.probe_steps

    def _probe(self, action: Any) -> Any:
        clone = copy.deepcopy(self.env.unwrapped)
        try:
            next_obs = clone.step(action)[0]
        except Exception as e:
            raise RuntimeError(
                f"greedy: a copy.deepcopy of {self.env.unwrapped} cannot step ({type(e).__name__}: {e}); "
                "this simulator cannot be branched by copying (e.g. Box2D loses its bodies)"
            ) from e
        self.probe_steps += 1
        return next_obs

    def step(self, obs: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """
        Probe every candidate from the current state, then take the best one in the real env.

        :param obs: the real env's current (raw) observation
        :return: the real env's ``step`` output
        """
        next_obs = [self._probe(action) for action in self.candidates]
        scores = self.reward_model(obs_batch([obs] * len(next_obs)), self.candidate_tensor, obs_batch(next_obs))
        best = int(np.argmax(scores))  # ties: the first candidate
        obs, reward, terminated, truncated, info = self.env.step(self.candidates[best])
        self.real_steps += 1
        if not all(np.array_equal(a, b) for a, b in zip(_leaves(obs), _leaves(next_obs[best]), strict=True)):
            raise RuntimeError(
                f"greedy: a copy.deepcopy of {self.env.unwrapped} does not reproduce the real step (same state, same "
                f"action {self.candidates[best]}): real {obs}, copy {next_obs[best]}"
            )
        return obs, float(reward), terminated, truncated, info


def _leaves(obs: Any) -> list[Any]:
    return [obs[key] for key in sorted(obs)] if isinstance(obs, dict) else [obs]


def evaluate_greedy(
    env_id: str, reward_function: RewardSpec, reward_weights: Sequence[float] | None, seeds: Sequence[int]
) -> dict[str, Any]:
    """
    One episode of the greedy controller per reset seed, scored with the env's true reward.

    :param env_id: gymnasium id (``gym.make``, with its time limit)
    :param reward_function: the controller's reward function(s)
    :param reward_weights: their weights
    :param seeds: episode ``i`` starts with ``reset(seed=seeds[i])``
    :return: returns, lengths, their mean/std, CPU seconds per episode, real and simulator steps
    """
    env = gym.make(env_id)
    controller = GreedyController(env, reward_function, reward_weights)
    returns, lengths = [], []
    cpu = time.process_time()
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = controller.step(obs)
            total, length, done = total + reward, length + 1, terminated or truncated
        returns.append(total)
        lengths.append(length)
    cpu = time.process_time() - cpu
    env.close()
    return {
        "seeds": list(seeds),
        "returns": returns,
        "lengths": lengths,
        "mean": statistics.fmean(returns),
        "std": statistics.pstdev(returns),
        "cpu_s_per_episode": cpu / len(returns),
        "real_steps": controller.real_steps,
        "sim_steps": controller.sim_steps,
        "n_candidates": len(controller.candidates),
    }
