"""
Probes of many copies in one call, with a vectorized implementation a well-kept library provides.

gymnasium's ``CartPoleVectorEnv`` holds N CartPoles as one float64 ``state`` array of shape [4, N] and steps them
in a few numpy operations. The members of an env's groups are stepped through it, when it is proven to give
exactly what ``CartPoleEnv.step`` gives (same equations, same float64 arithmetic; a platform whose vectorized
``cos`` differs in the last bit fails the proof and keeps the per-member path).
"""

import copy
from typing import Any

import gymnasium as gym
import numpy as np

# Attributes of CartPoleEnv that set its dynamics (a user may have changed any of them)
CARTPOLE_PHYSICS = (
    "gravity",
    "masscart",
    "masspole",
    "total_mass",
    "length",
    "polemass_length",
    "force_mag",
    "tau",
    "kinematics_integrator",
    "theta_threshold_radians",
    "x_threshold",
)


class CartPoleVectorProbes:
    """
    Steps many CartPole states at once.

    :param env: The unwrapped ``CartPoleEnv`` whose dynamics to copy
    """

    def __init__(self, env: gym.Env):
        self.physics = {name: getattr(env, name) for name in CARTPOLE_PHYSICS}
        self.sutton_barto_reward = bool(getattr(env, "_sutton_barto_reward", False))
        self._vectors: dict[int, Any] = {}

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return type(env).__module__ == "gymnasium.envs.classic_control.cartpole" and type(env).__name__ == "CartPoleEnv"

    def _vector(self, capacity: int) -> Any:
        if capacity not in self._vectors:
            from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

            vector = CartPoleVectorEnv(
                num_envs=capacity, max_episode_steps=np.iinfo(np.int32).max, sutton_barto_reward=self.sutton_barto_reward
            )
            for name, value in self.physics.items():
                setattr(vector, name, value)
            vector.reset(seed=0)
            self._vectors[capacity] = vector
        return self._vectors[capacity]

    def step(self, states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """
        :param states: float64 physics states, [n, 4]
        :param actions: 0 or 1, [n]
        :return: next states [n, 4], observations (float32) [n, 4], rewards [n], terminated [n]
        """
        n = len(states)
        capacity = 1 << max(n - 1, 0).bit_length()  # a few vector sizes, padded with copies of the first state
        vector = self._vector(capacity)
        padded = np.empty((4, capacity))
        padded[:, :n] = states.T
        padded[:, n:] = states[:1].T
        vector.state = padded
        vector.steps[:] = 0
        vector.prev_done[:] = False  # no auto-reset: members stop at their episode's end
        padded_actions = np.zeros(capacity, dtype=np.int64)
        padded_actions[:n] = actions
        observations, rewards, terminated, _, _ = vector.step(padded_actions)
        return vector.state[:, :n].T.copy(), observations[:n], rewards[:n].astype(np.float64), terminated[:n]

    def verify(self, env: gym.Env, seed: int = 0, n: int = 256) -> str | None:
        """
        Prove it steps exactly as ``env.step`` (a throw-away copy) on random states and actions.

        :return: None when exact, otherwise the reason
        """
        rng = np.random.default_rng(seed)
        states = rng.uniform(-1.0, 1.0, size=(n, 4)) * np.array([2.4, 2.0, 0.21, 2.0])
        actions = rng.integers(0, 2, size=n)
        try:
            next_states, observations, rewards, terminated = self.step(states, actions)
            single: Any = copy.deepcopy(env)
            single.reset(seed=seed)
            for i in range(n):
                single.state = states[i].copy()
                single.steps_beyond_terminated = None
                obs, reward, term, _, _ = single.step(int(actions[i]))
                same = np.array_equal(single.state, next_states[i]) and np.array_equal(obs, observations[i])
                if not (same and reward == rewards[i] and term == terminated[i]):
                    return f"CartPoleVectorEnv and CartPoleEnv.step differ on state {states[i].tolist()}"
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return None
