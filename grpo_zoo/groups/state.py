"""
State groups: at every visited state, branch the env into G copies, score each copy's own action on its
own outcome, then continue the real env with one of the group's actions.
"""

from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.groups.base import action_tensor, flatten_members, obs_tensor, repeat_members, stack, take, to_env_actions
from grpo_zoo.groups.branching import EnvBrancher
from grpo_zoo.groups.sampling import noise_width, repeat_obs, sample_members, sample_with_noise
from grpo_zoo.groups.vec_obs import ObsPipeline
from grpo_zoo.grpo.buffer import GroupRolloutBuffer

if TYPE_CHECKING:
    from grpo_zoo.grpo.grpo import GRPO


class StateGroups:
    """
    Branched probes (``group_mode="state"``), the control analogue of TRPO's vine sampling.

    Each member g takes a_g ~ pi_old(.|s), then follows pi_old for ``horizon - 1`` more steps with common
    random numbers (the same env RNG state and the same policy noise in every copy). Its score is the
    discounted sum of rewards, ``reward_function(s, a, s')`` if given, else the env reward; a copy that
    terminates (or hits the time limit) stops scoring there.

    :param group_size: G, copies per state (ignored when exhaustive)
    :param horizon: Steps scored per copy, the branched action included
    :param exhaustive: Discrete spaces: every action once, weighted by pi_old(a|s)
    """

    def __init__(self, group_size: int, horizon: int, exhaustive: bool):
        self.group_size = group_size
        self.horizon = horizon
        self.exhaustive = exhaustive
        self.pipeline: ObsPipeline | None = None
        self.snapshot_families: list[str] = []

    def attach(self, env: VecEnv) -> None:
        """Attach a brancher to every env and prove that its snapshots are exact."""
        self.pipeline = ObsPipeline(env)
        for index in range(env.num_envs):
            env.set_attr("_grpo_brancher", EnvBrancher(index), indices=[index])
        reasons = env.env_method("grpo_branch", "verify")
        for index, reason in enumerate(reasons):
            if reason is not None:
                raise ValueError(
                    f"group_mode='state' branches the env at every visited state, but env {index} cannot be branched "
                    f"exactly: {reason}. Use group_mode='episode' (groups of envs reset with a shared seed), "
                    "which works with any env."
                )
        self.snapshot_families = env.env_method("grpo_branch", "family")

    def collect(
        self, model: "GRPO", env: VecEnv, callback: BaseCallback, buffer: GroupRolloutBuffer, n_rollout_steps: int
    ) -> bool:
        assert self.pipeline is not None, "attach() the env first"
        n_envs = env.num_envs
        env_index = np.arange(n_envs)
        for _ in range(n_rollout_steps):
            with th.no_grad():
                policy_obs = obs_as_tensor(model._last_obs, model.device)  # type: ignore[arg-type]
                actions, log_probs, weights = sample_members(model.policy, policy_obs, self.group_size, self.exhaustive)
                if self.exhaustive:
                    # The real env takes a genuine sample; in an exhaustive group, member a is action a
                    executed = model.policy.get_distribution(policy_obs).get_actions().cpu().numpy().reshape(n_envs)
                else:
                    # Members are i.i.d. samples of pi_old: member 0 is as genuine a sample as any
                    executed = np.zeros(n_envs, dtype=np.int64)
            actions_np = actions.cpu().numpy()
            env_actions = to_env_actions(model, actions_np)
            scores = self._probe(model, env, self.pipeline.raw(model._last_obs), env_actions, executed)

            # Change from the parent: the real step takes the executed member's action; the env serves
            # it from that member's probe (a replay, bit-identical to simulating it again).
            new_obs, _rewards, dones, infos = env.step(env_actions[env_index, executed])
            model.num_timesteps += n_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            model._update_info_buffer(infos, dones)
            distinct = ~np.all(env_actions == env_actions[:, :1], axis=tuple(range(1, env_actions.ndim)))
            buffer.add_groups(model._last_obs, actions_np, log_probs.cpu().numpy(), scores, weights.cpu().numpy(), distinct)
            model._last_obs = new_obs  # type: ignore[assignment]
            model._last_episode_starts = dones
        return True

    def _probe(self, model: "GRPO", env: VecEnv, root_obs: Any, env_actions: np.ndarray, executed: np.ndarray) -> np.ndarray:
        """
        Score every member of every env's group.

        :param root_obs: Raw observations of the real envs, [n_envs, *obs_shape]
        :param env_actions: First action of each member as the env receives it, [n_envs, G, *action_shape]
        :param executed: Member whose first step the real env will take, [n_envs]
        :return: Scores [n_envs, G]
        """
        n_envs, group_size = env_actions.shape[:2]
        active = np.ones((n_envs, group_size), dtype=bool)
        scores = np.zeros((n_envs, group_size))
        state = repeat_members(root_obs, group_size)
        actions = env_actions
        discount = 1.0
        env.env_method("grpo_branch", "begin", group_size, self.horizon, executed)
        for step in range(self.horizon):
            results = env.env_method("grpo_branch", "step", actions, active)
            next_state = _next_states(results, state)
            env_rewards = np.stack([r[1] for r in results])
            ended = np.stack([r[2] | r[3] for r in results])
            model.num_probe_steps += int(active.sum())
            rewards = self._rewards(model, state, actions, next_state, env_rewards, active)
            scores += discount * rewards * active
            active = active & ~ended
            discount *= model.gamma
            state = next_state
            if step + 1 < self.horizon:
                if not active.any():
                    break
                actions = self._follow_policy(model, state, n_envs, group_size)
        env.env_method("grpo_branch", "end", executed)
        return scores

    @staticmethod
    def _rewards(
        model: "GRPO", state: Any, actions: np.ndarray, next_state: Any, env_rewards: np.ndarray, active: np.ndarray
    ) -> np.ndarray:
        if model.reward_model is None:
            return env_rewards
        rewards = np.zeros(active.shape)
        if active.any():
            rewards[active] = model.reward_model(
                obs_tensor(take(state, active)), action_tensor(model, actions[active]), obs_tensor(take(next_state, active))
            )
        return rewards

    def _follow_policy(self, model: "GRPO", state: Any, n_envs: int, group_size: int) -> np.ndarray:
        """pi_old's next action in every copy, with the same policy noise across an env's copies."""
        assert self.pipeline is not None
        policy_obs = self.pipeline.to_policy(flatten_members(state))
        with th.no_grad():
            distribution = model.policy.get_distribution(obs_as_tensor(policy_obs, model.device))  # type: ignore[arg-type]
            uniform = th.rand(n_envs, noise_width(model.action_space), device=model.device)
            actions = sample_with_noise(distribution, repeat_obs(uniform, group_size))  # type: ignore[arg-type]
        actions_np = actions.cpu().numpy().reshape(n_envs, group_size, *model.action_space.shape)
        return to_env_actions(model, actions_np.astype(model.action_space.dtype, copy=False))


def _next_states(results: list[tuple], state: Any) -> Any:
    """Probe observations as [n_envs, G, ...]; members that had already stopped keep their last state."""
    rows = []
    for env_index, (observations, *_rest) in enumerate(results):
        rows.append(
            stack([obs if obs is not None else take(state, (env_index, member)) for member, obs in enumerate(observations)])
        )
    return stack(rows)
