"""
Branch a gym env: continue G copies from exactly the current state, then put the env back as it was.

This module runs where the env lives (in the main process for ``DummyVecEnv``, in each worker for
``SubprocVecEnv``). The main process reaches it only through ``VecEnv.set_attr`` / ``VecEnv.env_method``:

- ``set_attr("_grpo_brancher", EnvBrancher(index))`` attaches a brancher to each env. Unpickling it in a
  worker imports this module, which adds one method, ``gym.Env.grpo_branch``, so that
  ``env_method("grpo_branch", command, ...)`` finds it on the outermost wrapper.
- Probe steps go to the *unwrapped* env, below ``Monitor``, ``TimeLimit`` and the other bookkeeping
  wrappers, so the real env's episode statistics, time-limit counter and RNG stream are never touched.
  Stateless ``ActionWrapper`` / ``ObservationWrapper`` / ``RewardWrapper`` transforms are applied by hand
  and the time limit is replayed from the ``TimeLimit`` counter.

Snapshots (one family per kind of simulator, each proven exact on a throw-away copy before use):

- classic control: the float64 physics ``state`` (not the float32 observation) and a few counters;
- MuJoCo: the whole ``MjData`` (``mj_copyData``), so derived quantities such as ``xpos`` stay exact;
- generic fallback: a deep copy of the env's ``__dict__``, trusted only after a step of the restored env
  reproduces a step of the original (``copy.deepcopy`` of a Box2D env *succeeds* but loses its bodies).
"""

import copy
from typing import Any

import gymnasium as gym
import numpy as np

# Wrappers that only keep statistics, check the API or enforce call order: probes may step below them.
BOOKKEEPING_WRAPPERS = (
    "Monitor",
    "TimeLimit",
    "OrderEnforcing",
    "PassiveEnvChecker",
    "RecordEpisodeStatistics",
    "EnvCompatibility",
)


class Snapshotter:
    """Save and restore the complete simulator state of an unwrapped env (in place)."""

    name = "base"

    @staticmethod
    def matches(env: gym.Env) -> bool:
        raise NotImplementedError

    def save(self, env: gym.Env) -> Any:
        raise NotImplementedError

    def load(self, env: gym.Env, snapshot: Any, consume: bool = False) -> None:
        """Put ``snapshot`` into ``env``; with ``consume``, the snapshot will not be used again."""
        raise NotImplementedError


def _rng_state(env: gym.Env) -> Any:
    rng = env.__dict__.get("_np_random")
    return None if rng is None else copy.deepcopy(rng.bit_generator.state)


def _set_rng_state(env: gym.Env, state: Any) -> None:
    if state is not None:
        env.__dict__["_np_random"].bit_generator.state = copy.deepcopy(state)


class ClassicControlSnapshotter(Snapshotter):
    """Classic-control envs: their whole dynamics state is ``state`` (float64) plus a few counters."""

    name = "classic_control"
    ATTRIBUTES = ("state", "steps_beyond_terminated", "last_u")

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return type(env).__module__.startswith("gymnasium.envs.classic_control")

    def save(self, env: gym.Env) -> Any:
        values = {name: copy.deepcopy(env.__dict__[name]) for name in self.ATTRIBUTES if name in env.__dict__}
        return values, _rng_state(env)

    def load(self, env: gym.Env, snapshot: Any, consume: bool = False) -> None:
        values, rng_state = snapshot
        for name, value in values.items():
            env.__dict__[name] = copy.deepcopy(value)
        _set_rng_state(env, rng_state)


class MujocoSnapshotter(Snapshotter):
    """MuJoCo envs: copy the whole ``MjData`` (integration state and derived quantities)."""

    name = "mujoco"

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return type(env.__dict__.get("data")).__name__ == "MjData" and "model" in env.__dict__

    def save(self, env: gym.Env) -> Any:
        import mujoco

        data = mujoco.MjData(env.model)
        mujoco.mj_copyData(data, env.model, env.data)
        return data, _rng_state(env)

    def load(self, env: gym.Env, snapshot: Any, consume: bool = False) -> None:
        import mujoco

        data, rng_state = snapshot
        mujoco.mj_copyData(env.data, env.model, data)
        _set_rng_state(env, rng_state)


class DeepCopySnapshotter(Snapshotter):
    """Generic fallback: deep copy of the env's attributes, restored in place."""

    name = "deepcopy"

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return True

    def save(self, env: gym.Env) -> Any:
        return copy.deepcopy(env.__dict__)

    def load(self, env: gym.Env, snapshot: Any, consume: bool = False) -> None:
        env.__dict__.clear()
        env.__dict__.update(snapshot if consume else copy.deepcopy(snapshot))


SNAPSHOTTERS: tuple[type[Snapshotter], ...] = (ClassicControlSnapshotter, MujocoSnapshotter, DeepCopySnapshotter)


def find_snapshotter(env: gym.Env) -> Snapshotter:
    """The first snapshot family that claims ``env`` (the generic fallback claims everything)."""
    return next(cls() for cls in SNAPSHOTTERS if cls.matches(env))


def wrapper_chain(env: gym.Env) -> list[gym.Wrapper]:
    """Wrappers from the outermost inwards."""
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def _is_a(wrapper: gym.Env, class_names: tuple[str, ...]) -> bool:
    # By the names in the class hierarchy, not isinstance: rl_zoo3 replaces gymnasium.wrappers.TimeLimit by its
    # subclass PatchedTimeLimit when imported, so the class object depends on import order
    return any(cls.__name__ in class_names for cls in type(wrapper).__mro__)


def unbranchable_wrapper(env: gym.Env) -> str | None:
    """Name of the first wrapper that probes cannot step around (it may keep state), or None."""
    for wrapper in wrapper_chain(env):
        is_transform = isinstance(wrapper, gym.ActionWrapper | gym.ObservationWrapper | gym.RewardWrapper)
        if not is_transform and not _is_a(wrapper, BOOKKEEPING_WRAPPERS):
            return type(wrapper).__name__
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def verify_snapshotter(env: gym.Env, snapshotter: Snapshotter, seed: int = 0, n_steps: int = 3) -> str | None:
    """
    Prove that restoring a snapshot reproduces the env exactly, on a throw-away copy of ``env``.

    The copy is reset, stepped, snapshotted, stepped ``n_steps`` times, restored and stepped again with the
    same actions: both runs must give identical observations, rewards and flags.

    :return: None when exact, otherwise the reason
    """
    try:
        probe = copy.deepcopy(env)
        probe.reset(seed=seed)
        probe.action_space.seed(seed)
        actions = [probe.action_space.sample() for _ in range(n_steps + 1)]
        probe.step(actions[0])
        snapshot = snapshotter.save(probe)
        first = [probe.step(action)[:4] for action in actions[1:]]
        snapshotter.load(probe, snapshot)
        second = [probe.step(action)[:4] for action in actions[1:]]
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    for step, (a, b) in enumerate(zip(first, second, strict=True)):
        if not all(_same(x, y) for x, y in zip(a, b, strict=True)):
            return f"a restored copy diverged from the original at step {step + 1}"
    return None


class EnvBrancher:
    """
    Lives beside one env (attached with ``set_attr``) and runs its probes.

    :param index: Index of this env in its VecEnv: broadcast commands carry one row per env
    """

    def __init__(self, index: int):
        self.index = index
        self.snapshotter: Snapshotter | None = None
        self._root: Any = None
        self._members: list[Any] = []
        self._first_steps: list[Any] = []
        self._elapsed_at_root = 0
        self._n_probe_steps = 0

    # --- commands (called through env.grpo_branch) ---

    def verify(self, env: gym.Env) -> str | None:
        """Pick and prove the snapshot family; return the reason when the env cannot be branched."""
        wrapper = unbranchable_wrapper(env)
        if wrapper is not None:
            return f"wrapper {wrapper} may keep state that probes cannot step around"
        unwrapped = env.unwrapped
        for cls in SNAPSHOTTERS:
            if not cls.matches(unwrapped):
                continue
            reason = verify_snapshotter(unwrapped, cls())
            if reason is None:
                self.snapshotter = cls()
                return None
        return f"no exact snapshot of {type(unwrapped).__name__} ({reason})"

    def family(self, env: gym.Env) -> str | None:
        return None if self.snapshotter is None else self.snapshotter.name

    def step_if(self, env: gym.Env, actions: np.ndarray, running: np.ndarray) -> tuple | None:
        """
        A real step of this env through all its wrappers (Monitor included), without auto-reset, if it runs.
        One broadcast ``env_method`` call steps a subset of the envs, in parallel under ``SubprocVecEnv``.

        :param actions: One action per env of the VecEnv; this env reads row ``index``
        :param running: Shape (n_envs,): the envs to step
        :return: ``env.step``'s 5-tuple, or None for an env that waits
        """
        return env.step(actions[self.index]) if running[self.index] else None

    def begin(
        self, env: gym.Env, n_members: int, horizon: int | None = None, replay_members: np.ndarray | None = None
    ) -> None:
        """
        Remember the current state as the root of a group of ``n_members`` copies.

        :param horizon: Steps the probes will take; None if unknown (every state is kept)
        :param replay_members: Member per env whose first step the real env will take (see ``end``)
        """
        assert self.snapshotter is not None, "call verify first"
        unwrapped = env.unwrapped
        self._restore_step_method(unwrapped)
        self._root = self.snapshotter.save(unwrapped)
        self._members = [self._root] * n_members
        self._first_steps = [None] * n_members
        self._horizon = horizon
        self._replay_member = None if replay_members is None else int(replay_members[self.index])
        time_limit = _find_time_limit(env)
        self._elapsed_at_root = 0 if time_limit is None else time_limit._elapsed_steps
        self._n_probe_steps = 0

    def step(self, env: gym.Env, actions: np.ndarray, active: np.ndarray) -> tuple:
        """
        Advance each active copy by one step from where it stands.

        :param actions: Actions of every env of the VecEnv, shape (n_envs, n_members, *action_shape);
            this env reads row ``index``
        :param active: Shape (n_envs, n_members): copies still running
        :return: (observations, rewards, terminated, truncated) of this env's copies, one entry per member
            (inactive members get None and zero reward)
        """
        assert self.snapshotter is not None
        unwrapped = env.unwrapped
        chain = wrapper_chain(env)
        time_limit = _find_time_limit(env)
        n_members = len(self._members)
        observations: list[Any] = [None] * n_members
        rewards = np.zeros(n_members)
        terminated = np.zeros(n_members, dtype=bool)
        truncated = np.zeros(n_members, dtype=bool)
        first_step = self._n_probe_steps == 0
        self._n_probe_steps += 1
        more_steps = self._horizon is None or self._n_probe_steps < self._horizon
        for member in range(n_members):
            if not active[self.index, member]:
                continue
            # A member's own state is used once; the root and the state kept for the replay are shared
            shared = first_step or (self._n_probe_steps == 2 and self._keeps_replay_state(member))
            self.snapshotter.load(unwrapped, self._members[member], consume=not shared)
            action = actions[self.index, member]
            for wrapper in chain:
                if isinstance(wrapper, gym.ActionWrapper):
                    action = wrapper.action(action)
            obs, reward, term, trunc, info = unwrapped.step(action)
            replayable = first_step and self._keeps_replay_state(member)
            if more_steps or replayable:
                self._members[member] = self.snapshotter.save(unwrapped)
            if replayable:
                result = copy.deepcopy((obs, reward, term, trunc, info))
                self._first_steps[member] = (np.copy(action), result, self._members[member])
            for wrapper in reversed(chain):
                if isinstance(wrapper, gym.ObservationWrapper):
                    obs = wrapper.observation(obs)
                elif isinstance(wrapper, gym.RewardWrapper):
                    reward = wrapper.reward(reward)
            if time_limit is not None and self._elapsed_at_root + self._n_probe_steps >= time_limit._max_episode_steps:
                trunc = True
            observations[member], rewards[member], terminated[member], truncated[member] = obs, reward, term, trunc
        return observations, rewards, terminated, truncated

    def _keeps_replay_state(self, member: int) -> bool:
        """Whether the state after this member's first step is kept for a replay (all when unknown)."""
        return self._horizon is None or member == self._replay_member

    def end(self, env: gym.Env, replay_members: np.ndarray | None = None) -> None:
        """
        Put the env back at the root.

        :param replay_members: One member per env of the VecEnv (this env reads row ``index``): the real
            env's next step, if it takes that member's first action, is served from the probe instead of
            simulated again (same result, exactly: the probe started from the restored root).
        """
        assert self.snapshotter is not None
        unwrapped = env.unwrapped
        self.snapshotter.load(unwrapped, self._root)
        replay_member = None if replay_members is None else int(replay_members[self.index])
        if replay_member is not None and self._first_steps[replay_member] is not None:
            self._arm_replay(unwrapped, *self._first_steps[replay_member])
        self._root, self._members, self._first_steps = None, [], []

    # --- replay of the executed branch ---

    def _arm_replay(self, unwrapped: gym.Env, action: np.ndarray, result: tuple, state_after: Any) -> None:
        snapshotter = self.snapshotter
        assert snapshotter is not None
        class_step, class_reset = type(unwrapped).step, type(unwrapped).reset

        def replay_step(real_action: Any) -> tuple:
            # One shot: whatever happens, the env's own methods are back for the next call
            self._restore_step_method(unwrapped)
            if np.array_equal(np.asarray(real_action), action):
                snapshotter.load(unwrapped, state_after)
                return copy.deepcopy(result)
            return class_step(unwrapped, real_action)

        def reset_disarms(*args: Any, **kwargs: Any) -> Any:
            self._restore_step_method(unwrapped)
            return class_reset(unwrapped, *args, **kwargs)

        unwrapped.__dict__["step"] = replay_step
        unwrapped.__dict__["reset"] = reset_disarms

    @staticmethod
    def _restore_step_method(unwrapped: gym.Env) -> None:
        unwrapped.__dict__.pop("step", None)
        unwrapped.__dict__.pop("reset", None)


def _find_time_limit(env: gym.Env) -> Any:
    for wrapper in wrapper_chain(env):
        if _is_a(wrapper, ("TimeLimit",)):
            return wrapper
    return None


def _grpo_branch(self: gym.Env, command: str, *args: Any) -> Any:
    """Entry point reached by ``VecEnv.env_method("grpo_branch", command, *args)``."""
    brancher = self.get_wrapper_attr("_grpo_brancher")
    return getattr(brancher, command)(self, *args)


# The one addition to gymnasium: a method every env (and so every outermost wrapper) answers to.
gym.Env.grpo_branch = _grpo_branch  # type: ignore[attr-defined]
