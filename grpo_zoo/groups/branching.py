"""
Branch a gym env: run copies ("members") from exactly a state the real env visited.

This module runs where the env lives (in the main process for ``DummyVecEnv``, in each worker for
``SubprocVecEnv``). The main process reaches it only through ``VecEnv.set_attr`` / ``VecEnv.env_method``:

- ``set_attr("_grpo_brancher", EnvBrancher(index))`` attaches a brancher to each env. Unpickling it in a
  worker imports this module, which adds one method, ``gym.Env.grpo_branch``, so that
  ``env_method("grpo_branch", command, ...)`` finds it on the outermost wrapper.
- The real env is only ever *read*: its simulator state is saved at the visited states the collector asks for
  (``save_root``). Probes step a copy of the unwrapped env made once, loading each member's snapshot in turn,
  so the real env's episode statistics (Monitor), time-limit counter, RNG stream and state are never touched,
  whatever happens during a probe (an exception, a KeyboardInterrupt).
- Stateless ``ActionWrapper`` / ``ObservationWrapper`` / ``RewardWrapper`` transforms of the real env are applied
  by hand around each member step and the time limit is replayed from the ``TimeLimit`` counter at the root.

Snapshots (one family per kind of simulator, each proven exact on throw-away copies before use):

- classic control: the float64 physics ``state`` (not the float32 observation) and a few counters;
- MuJoCo: the whole ``MjData`` (``mj_copyData``), so derived quantities such as ``xpos`` stay exact;
- generic fallback: a deep copy of the env's ``__dict__``, trusted only after a member restored from it
  reproduces the original (``copy.deepcopy`` of a Box2D env *succeeds* but loses its bodies).

Envs whose ``step`` draws from ``np_random`` carry the RNG state in their snapshots, so that the members of a
group see the same random numbers (common random numbers) as the real env would have.
"""

import copy
from typing import Any

import gymnasium as gym
import numpy as np

from grpo_zoo.groups.batches import stack, take
from grpo_zoo.groups.vector_probes import CartPoleVectorProbes

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
    """Save the simulator state of an unwrapped env and load it into a copy of that env."""

    reuses_memory = False  # whether ``save(into=...)`` writes into the old snapshot's memory

    def __init__(self, with_rng: bool = False):
        self.with_rng = with_rng

    @staticmethod
    def matches(env: gym.Env) -> bool:
        raise NotImplementedError

    def save(self, env: gym.Env, into: Any = None) -> Any:
        """
        A snapshot that later steps of ``env`` do not change.

        :param into: A snapshot of this family that is no longer needed, whose memory may be reused
        """
        raise NotImplementedError

    def load(self, env: gym.Env, snapshot: Any) -> None:
        """Put ``snapshot`` into ``env`` (a copy of the env it was taken from); the snapshot stays usable."""
        raise NotImplementedError

    def _save_rng(self, env: gym.Env) -> Any:
        rng = env.__dict__.get("_np_random")
        return None if not self.with_rng or rng is None else copy.deepcopy(rng.bit_generator.state)

    @staticmethod
    def _load_rng(env: gym.Env, state: Any) -> None:
        if state is not None:
            env.__dict__["_np_random"].bit_generator.state = state


class ClassicControlSnapshotter(Snapshotter):
    """Classic-control envs: their whole dynamics state is ``state`` (float64) plus a few counters."""

    ATTRIBUTES = ("state", "steps_beyond_terminated", "last_u")

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return type(env).__module__.startswith("gymnasium.envs.classic_control")

    def save(self, env: gym.Env, into: Any = None) -> Any:
        # By reference: these envs replace ``state`` at every step and never write into it, which verify proves
        # (a member loads one snapshot twice and must repeat itself)
        attributes = env.__dict__
        values = tuple((name, attributes[name]) for name in self.ATTRIBUTES if name in attributes)
        return values, self._save_rng(env) if self.with_rng else None

    def load(self, env: gym.Env, snapshot: Any) -> None:
        values, rng_state = snapshot
        env.__dict__.update(values)
        self._load_rng(env, rng_state)


class MujocoSnapshotter(Snapshotter):
    """MuJoCo envs: copy the whole ``MjData`` (integration state and derived quantities)."""

    reuses_memory = True

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return type(env.__dict__.get("data")).__name__ == "MjData" and "model" in env.__dict__

    def save(self, env: gym.Env, into: Any = None) -> Any:
        import mujoco

        model = env.__dict__["model"]
        data = mujoco.MjData(model) if into is None else into[0]
        mujoco.mj_copyData(data, model, env.__dict__["data"])
        return data, self._save_rng(env)

    def load(self, env: gym.Env, snapshot: Any) -> None:
        import mujoco

        data, rng_state = snapshot
        mujoco.mj_copyData(env.__dict__["data"], env.__dict__["model"], data)
        self._load_rng(env, rng_state)


class DeepCopySnapshotter(Snapshotter):
    """Generic fallback: deep copy of the env's attributes (the RNG included)."""

    @staticmethod
    def matches(env: gym.Env) -> bool:
        return True

    def save(self, env: gym.Env, into: Any = None) -> Any:
        return copy.deepcopy(env.__dict__)

    def load(self, env: gym.Env, snapshot: Any) -> None:
        env.__dict__.clear()
        env.__dict__.update(copy.deepcopy(snapshot))


SNAPSHOTTERS: tuple[type[Snapshotter], ...] = (ClassicControlSnapshotter, MujocoSnapshotter, DeepCopySnapshotter)


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


def find_time_limit(env: gym.Env) -> Any:
    """The ``TimeLimit`` wrapper of ``env`` (any subclass), or None."""
    for wrapper in wrapper_chain(env):
        if _is_a(wrapper, ("TimeLimit",)):
            return wrapper
    return None


def same_step(a: tuple, b: tuple) -> bool:
    """Whether two ``(obs, reward, terminated, truncated)`` results are identical, bit for bit."""
    return all(_same(x, y) for x, y in zip(a, b, strict=True))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _rng_state(env: gym.Env) -> Any:
    rng = env.__dict__.get("_np_random")
    return None if rng is None else rng.bit_generator.state


def verify_snapshotter(env: gym.Env, snapshotter: Snapshotter, seed: int = 0, n_steps: int = 3) -> str | None:
    """
    Prove that a member restored from a snapshot continues exactly as the env it was taken from.

    On throw-away copies of ``env``: the original is reset, stepped and snapshotted, then stepped ``n_steps``
    times; a second copy loads the snapshot twice and repeats those steps each time (a member must not change
    the snapshot it shares with the others). Every run must give identical observations, rewards and flags.

    :return: None when exact, otherwise the reason
    """
    try:
        original, member = copy.deepcopy(env), copy.deepcopy(env)
        original.reset(seed=seed)
        member.reset(seed=seed + 1)
        sampler = copy.deepcopy(original.action_space)
        sampler.seed(seed)
        actions = [sampler.sample() for _ in range(n_steps + 1)]
        original.step(actions[0])
        snapshot = snapshotter.save(original)
        expected = [original.step(action)[:4] for action in actions[1:]]
        runs = []
        for _ in range(2):
            snapshotter.load(member, snapshot)
            runs.append([member.step(action)[:4] for action in actions[1:]])
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    for run in runs:
        for step, (a, b) in enumerate(zip(expected, run, strict=True)):
            if not same_step(a, b):
                return f"a copy restored from a snapshot diverged from the original at step {step + 1}"
    return None


def step_draws_random_numbers(env: gym.Env, seed: int = 0, n_steps: int = 3) -> bool:
    """Whether ``env.step`` draws from ``np_random`` (then snapshots must carry the RNG state)."""
    probe = copy.deepcopy(env)
    probe.reset(seed=seed)
    before = copy.deepcopy(_rng_state(probe))
    sampler = copy.deepcopy(probe.action_space)
    sampler.seed(seed)
    for _ in range(n_steps):
        probe.step(sampler.sample())
    return _rng_state(probe) != before


class EnvBrancher:
    """
    Lives beside one env (attached with ``set_attr``), keeps its root snapshots and runs its members.

    Broadcast commands carry one entry per env of the VecEnv; this brancher reads entry ``index``.

    :param index: Index of this env in its VecEnv
    """

    def __init__(self, index: int):
        self.index = index
        self.snapshotter: Snapshotter | None = None
        self._probe_env: gym.Env | None = None  # a copy of the unwrapped env that steps every member in turn
        self._vector: CartPoleVectorProbes | None = None  # or one call for all members, where proven exact
        self._vector_states = np.zeros((0, 4))
        self._member_states: list[Any] = []  # each member's snapshot (its root's until it steps)
        self._spare_states: list[Any] = []  # snapshots no longer needed, whose memory ``save`` may reuse
        self._roots: list[tuple[Any, int]] = []  # (snapshot, time-limit counter) of each saved state
        self._member_elapsed = np.zeros(0, dtype=np.int64)
        self._member_obs: list[Any] = []
        self._n_steps = 0

    def __getstate__(self) -> dict[str, Any]:
        # Sent to SubprocVecEnv workers before verify: only the index travels
        return {"index": self.index}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["index"])  # type: ignore[misc]

    # --- commands (called through env.grpo_branch) ---

    def verify(self, env: gym.Env) -> str | None:
        """Pick and prove the snapshot family, make the member template; the reason when the env cannot be branched."""
        wrapper = unbranchable_wrapper(env)
        if wrapper is not None:
            return f"wrapper {wrapper} may keep state that probes cannot step around"
        unwrapped = env.unwrapped
        reason = "no snapshot family"
        for cls in SNAPSHOTTERS:
            if not cls.matches(unwrapped):
                continue
            try:
                snapshotter = cls(with_rng=step_draws_random_numbers(unwrapped))
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                continue
            reason = verify_snapshotter(unwrapped, snapshotter) or ""
            if not reason:
                self.snapshotter = snapshotter
                self._probe_env = copy.deepcopy(unwrapped)
                self._vector = _proven_vector_probes(unwrapped, snapshotter)
                return None
        return f"no exact snapshot of {type(unwrapped).__name__} ({reason})"

    def save_root(self, env: gym.Env, mask: np.ndarray) -> None:
        """
        Remember the env's current state as a root, if ``mask[index]``.

        :param mask: Shape (n_envs,): the envs whose state to save
        """
        if mask[self.index]:
            assert self.snapshotter is not None, "call verify first"
            time_limit = find_time_limit(env)
            snapshot = self.snapshotter.save(env.unwrapped, into=self._spare())
            self._roots.append((snapshot, 0 if time_limit is None else time_limit._elapsed_steps))

    def start(self, env: gym.Env, member_roots: list[np.ndarray], root_obs: list[Any]) -> None:
        """
        Put each member at its root.

        :param member_roots: Per env: the root of each of its members (indices into the saved roots)
        :param root_obs: Per env: each member's first observation (as the env returned it at the root)
        """
        roots = member_roots[self.index]
        self._member_states = [self._roots[root][0] for root in roots]
        if self._vector is not None:
            self._vector_states = np.array([dict(self._roots[root][0][0])["state"] for root in roots], dtype=np.float64)
        self._member_elapsed = np.array([self._roots[root][1] for root in roots], dtype=np.int64)
        first = root_obs[self.index]
        self._member_obs = [take(first, m) for m in range(len(roots))]
        self._n_steps = 0

    def step(self, env: gym.Env, actions: list[np.ndarray], active: list[np.ndarray]) -> tuple:
        """
        Advance each active member by one step from where it stands.

        :param actions: Per env: one action per member, as the env receives it
        :param active: Per env: the members still running
        :return: (observations, rewards, terminated, truncated) of this env's members; a member that is not
            active keeps its last observation and gets zero reward
        """
        snapshotter, probe_env = self.snapshotter, self._probe_env
        assert snapshotter is not None and probe_env is not None, "call verify first"
        chain = wrapper_chain(env)
        time_limit = find_time_limit(env)
        member_actions, member_active = actions[self.index], active[self.index]
        n_members = len(member_active)
        rewards = np.zeros(n_members)
        terminated = np.zeros(n_members, dtype=bool)
        truncated = np.zeros(n_members, dtype=bool)
        first_step = self._n_steps == 0
        self._n_steps += 1
        action_transforms = [w.action for w in chain if isinstance(w, gym.ActionWrapper)]
        output_transforms = [w for w in reversed(chain) if isinstance(w, gym.ObservationWrapper | gym.RewardWrapper)]
        if self._vector is not None and not action_transforms and not output_transforms:
            self._vector_step(member_actions, member_active, rewards, terminated)
        else:
            for m in np.flatnonzero(member_active):
                action = member_actions[m]
                for transform in action_transforms:
                    action = transform(action)
                snapshotter.load(probe_env, self._member_states[m])
                obs, reward, terminated[m], truncated[m], _ = probe_env.step(action)
                # A member shares its root's snapshot until its first step, then has one of its own to overwrite
                own = self._spare() if first_step else self._member_states[m]
                self._member_states[m] = snapshotter.save(probe_env, into=own)
                for wrapper in output_transforms:
                    if isinstance(wrapper, gym.ObservationWrapper):
                        obs = wrapper.observation(obs)
                    else:
                        reward = wrapper.reward(reward)  # type: ignore[attr-defined]
                self._member_obs[m], rewards[m] = obs, reward
        if time_limit is not None:
            truncated |= member_active & (self._member_elapsed + self._n_steps >= time_limit._max_episode_steps)
        return stack(self._member_obs), rewards, terminated, truncated

    def _vector_step(self, actions: np.ndarray, active: np.ndarray, rewards: np.ndarray, terminated: np.ndarray) -> None:
        """:meth:`step` of every active member in one call of the vectorized implementation (fills ``rewards``,
        ``terminated`` and the members' observations)."""
        assert self._vector is not None
        running = np.flatnonzero(active)
        if len(running):
            states, obs, step_rewards, ended = self._vector.step(self._vector_states[running], actions[running])
            self._vector_states[running] = states
            rewards[running], terminated[running] = step_rewards, ended
            for m, member_obs in zip(running, obs, strict=True):
                self._member_obs[m] = member_obs

    def clear(self, env: gym.Env) -> None:
        """Forget the roots and the members' positions (the members' memory is kept for the next rollout)."""
        if self.snapshotter is not None and self.snapshotter.reuses_memory:
            unique = {id(state): state for state in [*self._member_states, *(root for root, _ in self._roots)]}
            self._spare_states.extend(unique.values())
        self._roots, self._member_states, self._member_obs, self._n_steps = [], [], [], 0

    def _spare(self) -> Any:
        """A snapshot whose memory may be overwritten, or None."""
        return self._spare_states.pop() if self._spare_states else None

    def max_episode_steps(self, env: gym.Env) -> int | None:
        """The env's time limit, or None if it has none."""
        time_limit = find_time_limit(env)
        return None if time_limit is None else int(time_limit._max_episode_steps)

    def step_if(self, env: gym.Env, actions: np.ndarray, running: np.ndarray) -> tuple | None:
        """
        A real step of this env through all its wrappers (Monitor included), without auto-reset, if it runs.
        One broadcast ``env_method`` call steps a subset of the envs, in parallel under ``SubprocVecEnv``.

        :param actions: One action per env of the VecEnv; this env reads row ``index``
        :param running: Shape (n_envs,): the envs to step
        :return: ``env.step``'s 5-tuple, or None for an env that waits
        """
        return env.step(actions[self.index]) if running[self.index] else None


def attach_branchers(venv: Any) -> None:
    """
    Attach an :class:`EnvBrancher` to every env of a VecEnv, through ``set_attr`` (so into ``SubprocVecEnv``
    workers too); ``env_method("grpo_branch", ...)`` then reaches them.

    :param venv: The VecEnv
    """
    for index in range(venv.num_envs):
        venv.set_attr("_grpo_brancher", EnvBrancher(index), indices=[index])


def _proven_vector_probes(unwrapped: gym.Env, snapshotter: Snapshotter) -> CartPoleVectorProbes | None:
    """The vectorized implementation of ``unwrapped``'s dynamics, if there is one and it is proven exact."""
    if not isinstance(snapshotter, ClassicControlSnapshotter) or snapshotter.with_rng:
        return None
    if not CartPoleVectorProbes.matches(unwrapped):
        return None
    vector = CartPoleVectorProbes(unwrapped)
    return vector if vector.verify(unwrapped) is None else None


def _grpo_branch(self: gym.Env, command: str, *args: Any) -> Any:
    """Entry point reached by ``VecEnv.env_method("grpo_branch", command, *args)``."""
    brancher = self.get_wrapper_attr("_grpo_brancher")
    return getattr(brancher, command)(self, *args)


# The one addition to gymnasium: a method every env (and so every outermost wrapper) answers to.
gym.Env.grpo_branch = _grpo_branch  # type: ignore[attr-defined]
