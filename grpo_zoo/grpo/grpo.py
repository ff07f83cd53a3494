"""GRPO: group-relative advantages in a critic-free clipped objective."""

import copy
import io
import pathlib
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import VecEnv

from grpo_zoo.advantages import group_advantages, zero_variance_mask
from grpo_zoo.groups.base import GroupCollector, GroupRollout, OldPolicy, RealStepsCallback
from grpo_zoo.groups.modes import DEFAULT_GROUP_MODE
from grpo_zoo.groups.registry import make_collector
from grpo_zoo.grpo.buffer import GroupRolloutBuffer
from grpo_zoo.grpo.checks import check_arguments, check_model_file, check_spaces, warn_on_batch_size
from grpo_zoo.grpo.loss import LossStats, Objective, minibatch_loss
from grpo_zoo.rewards import RewardModel, RewardSpec, describe, import_path_of
from grpo_zoo.schedules import parse_schedule

SelfGRPO = TypeVar("SelfGRPO", bound="GRPO")

# Share of degenerate groups in a rollout above which the reward function is reported as blind
ZERO_VARIANCE_WARNING = 0.5


class GRPO(OnPolicyAlgorithm):
    """
    Group Relative Policy Optimization (GRPO), critic-free, for control.

    At a fraction of the visited states (``group_mode="state"``) the env is branched into G copies that each take
    their own action from pi_old and are scored on their own outcome over a horizon (TRPO's vine); for envs that
    cannot be branched (``group_mode="episode"``), groups of envs reset with a shared seed and compare their
    episodes; with ``group_mode="time"`` (GPG), the VecEnv steps as PPO's and every episode of a rollout is compared
    with the others at the same time step.
    The advantage of a member is its score relative to its group, used in PPO's clipped surrogate with an
    optional KL penalty to a frozen reference policy. There is no value function.

    Paper: DeepSeekMath https://arxiv.org/abs/2402.03300 (GRPO), https://arxiv.org/abs/2503.14476 (DAPO
    clip-higher), https://arxiv.org/abs/2503.20783 (Dr. GRPO, unscaled advantages)

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy, ...)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param reward_function: Reward that scores group members, ``fn(state, action, next_state) -> Tensor[B, 1]``
        on batched tensors in the env's own observation units; a callable, an import path
        ``"package.module:function"``, a list of these (summed with ``reward_weights``), or None to use the
        env's reward
    :param reward_weights: One weight per reward function when ``reward_function`` is a list
    :param group_size: Members per group, G >= 2 (ignored with ``exhaustive=True``)
    :param group_mode: "state" (branched copies of the env at visited states), "time" (every episode of the rollout
        compared with the others at the same time step, GPG) or "episode"
        (groups of ``group_size`` envs reset with one seed; ``n_envs`` must be a multiple of ``group_size``)
    :param horizon: State groups: steps scored per copy, the branched action included (then pi_old)
    :param exhaustive: State groups, Discrete actions: score every action once and weight each by
        pi_old(a|s) in the surrogate (the exact expectation, no sampling noise)
    :param branch_fraction: State groups: fraction of the visited states that are branched, in (0, 1]. A real
        step then costs at most ``branch_fraction * (group_size - 1) * horizon`` probe steps: the real action's
        member is read off the real trajectory, members that took the same action share a probe, and a group of
        one action is not probed (``rollout/probe_steps_per_step``)
    :param train_continuations: State groups: also train on the later steps of each member's ``horizon``-step
        run, each compared with the members still running at that step (``supervision``), so that every probe
        step is a training sample; otherwise only the branched actions are trained (TRPO's vine)
    :param noise_hold: Time bins and episode groups: real steps for which an env keeps the random number its actions
        are drawn from (by inverting pi_old's CDF): actions correlated in time, each still distributed as pi_old(.|s)
        (the discrete analogue of gSDE's ``sde_sample_freq``), which explores where independent actions dither. It
        holds at the start and after a rollout whose finished episodes all tied (no signal); once a rollout ranks its
        members, every action is drawn anew. 1 always draws each anew (SB3's sampling)
    :param supervision: "process" (a member's return-to-go at each step vs the members still running then; the
        default, it learned CartPole faster than "outcome" in our runs) or "outcome" (its whole return vs the
        group's mean, for every step): episode groups and state groups with ``train_continuations``
    :param loss_weighting: How a member's samples weigh in the loss: "step" (each step the same, as TRL's
        ``loss_type="bnpo"``/``"dr_grpo"``: long episodes weigh more) or "run" (each episode or run the same, its
        steps sharing its weight, as DeepSeekMath's and TRL's ``"grpo"``)
    :param scale_rewards: "group" (divide by the group std), "batch" (by the rollout std) or "none"
    :param leave_one_out: Baseline each member with the mean of the *other* members of its group (RLOO, unbiased
        for any G) instead of the group mean, which includes the member's own score
    :param dynamic_sampling: DAPO's dynamic sampling: train only on samples whose advantage is not 0, and keep
        collecting rollouts (every step counted) until they fill a minibatch (``batch_size``) before an update, so that
        a rollout whose groups all tie (e.g. every episode timed out alike) is acted on, not trained on
    :param learning_rate: The learning rate, a float or a schedule of the progress remaining (1 to 0)
    :param n_steps: Real steps per env per rollout (episode groups finish their running episodes)
    :param batch_size: Minibatch size, in training samples
    :param n_epochs: Number of epochs over the rollout
    :param gamma: Discount factor of the scores (horizon > 1, process supervision)
    :param clip_range: Lower clip, ratio >= 1 - clip_range; a float or a schedule
    :param clip_range_high: Upper clip, ratio <= 1 + clip_range_high (DAPO's clip-higher); None: ``clip_range``
    :param beta: Weight of the KL penalty to the reference policy (k3 estimator); 0 keeps no reference
    :param ref_update_interval: Refresh the reference policy every this many rollouts
    :param normalize_advantage: Scale each minibatch's advantages by the root mean square of its nonzero ones, not
        re-centred as PPO does: a sample without signal keeps advantage 0
    :param ent_coef: Entropy coefficient
    :param max_grad_norm: The maximum value for the gradient clipping
    :param target_kl: Stop the epochs of a rollout early when the approximate KL to pi_old exceeds 1.5 target_kl
    :param stats_window_size: Episodes averaged in ``rollout/ep_rew_mean``
    :param tensorboard_log: The log location for tensorboard (if None, no logging)
    :param policy_kwargs: Additional arguments to be passed to the policy on creation
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    :param critic_kwargs: PPO's ``vf_coef``, ``clip_range_vf``, ``gae_lambda``: accepted and ignored with a warning
    """

    # Whether learn()'s total_timesteps counts probe steps for the schedules' progress (a simulator-step budget)
    progress_counts_probes = False

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": ActorCriticPolicy,
        "CnnPolicy": ActorCriticCnnPolicy,
        "MultiInputPolicy": MultiInputActorCriticPolicy,
    }

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        reward_function: RewardSpec = None,
        reward_weights: list[float] | None = None,
        group_size: int = 4,
        group_mode: str = DEFAULT_GROUP_MODE,
        horizon: int = 1,
        exhaustive: bool = False,
        branch_fraction: float = 1.0,
        train_continuations: bool = False,
        noise_hold: int = 4,
        supervision: str = "process",
        loss_weighting: str = "step",
        scale_rewards: str = "none",
        leave_one_out: bool = False,
        dynamic_sampling: bool = False,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        clip_range: float | Schedule = 0.2,
        clip_range_high: float | Schedule | None = None,
        beta: float = 0.0,
        ref_update_interval: int = 10,
        normalize_advantage: bool = False,
        ent_coef: float = 0.0,
        max_grad_norm: float = 0.5,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        **critic_kwargs: Any,
    ):
        check_arguments(locals(), critic_kwargs)
        super().__init__(
            policy,
            env,
            learning_rate=parse_schedule("learning_rate", learning_rate),
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=1.0,  # unused: no GAE without a critic
            ent_coef=ent_coef,
            vf_coef=0.0,  # unused: no value loss
            max_grad_norm=max_grad_norm,
            use_sde=False,
            sde_sample_freq=-1,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
        )
        self.reward_function = reward_function
        self.reward_weights = reward_weights
        self.group_size = group_size
        self.group_mode = group_mode
        self.horizon = horizon
        self.exhaustive = exhaustive
        self.branch_fraction = branch_fraction
        self.train_continuations = train_continuations
        self.noise_hold = noise_hold
        self.supervision = supervision
        self.loss_weighting = loss_weighting
        self.scale_rewards = scale_rewards
        self.leave_one_out = leave_one_out
        self.dynamic_sampling = dynamic_sampling
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.clip_range = clip_range
        self.clip_range_high = clip_range_high
        self.beta = beta
        self.ref_update_interval = ref_update_interval
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl
        self.num_probe_steps = 0
        self.probe_cpu_seconds = 0.0
        self._num_probe_steps_at_start = 0
        self._n_rollouts = 0
        self._unsaved_reward_function: str | None = None
        if _init_setup_model:
            self._setup_model()
            if self.env is not None:
                # Fail now, not at learn(), when the env does not suit the group mechanism
                self._attach(self.env)
                warn_on_batch_size(self)

    def _setup_model(self) -> None:
        check_spaces(self.action_space, self.exhaustive)
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=False, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self._maybe_recommend_cpu()
        self.rollout_buffer = GroupRolloutBuffer(self.device)  # type: ignore[assignment]
        self.clip_range = FloatSchedule(parse_schedule("clip_range", self.clip_range))
        high = self.clip_range if self.clip_range_high is None else parse_schedule("clip_range_high", self.clip_range_high)
        self.clip_range_high = FloatSchedule(high)
        self.reward_model, self._reward_error = self._make_reward_model()
        self.ref_policy: ActorCriticPolicy | None = None
        self.groups: GroupCollector = make_collector(self.group_mode, vars(self), self.seed)
        self._attached_env: VecEnv | None = None
        self._warned_zero_variance = False
        self._unreported_steps = 0

    def _make_reward_model(self) -> tuple[RewardModel | None, str | None]:
        """The reward model, or None and why training cannot use the saved reward function (prediction still works)."""
        if self.reward_function is None:
            if self._unsaved_reward_function is None:
                return None, None
            reason = (
                f"This model was trained with the reward function {self._unsaved_reward_function}, a callable that "
                "cannot be saved by import path (a lambda, a closure or a function of __main__). Prediction works; "
                "to train further pass it back: GRPO.load(path, env=env, custom_objects={'reward_function': fn})"
            )
        else:
            self._unsaved_reward_function = None
            try:
                model = RewardModel(self.reward_function, self.reward_weights)
            except ValueError as error:
                # Only reachable when loading: the constructor resolved it already
                reason = (
                    f"This model was trained with the reward function {describe(self.reward_function)}, which cannot "
                    f"be loaded here ({error}). Prediction works; to train further make it importable or pass it "
                    "back: GRPO.load(path, env=env, custom_objects={'reward_function': fn})"
                )
            else:
                model.check_spaces(self.observation_space, self.action_space)
                return model, None
        warnings.warn(reason, stacklevel=3)
        return None, reason

    def _attach(self, env: VecEnv) -> None:
        """Prepare ``env`` for the group mechanism (a ``ValueError`` naming the fix if it does not suit it)."""
        self.groups.attach(env)
        self._attached_env = env

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self._reward_error is not None:
            raise ValueError(self._reward_error)
        # Probe counts follow reset_num_timesteps as num_timesteps does: a new run (e.g. the zoo's `-i`) counts
        # its own simulator steps
        if reset_num_timesteps:
            self.num_probe_steps = 0
            self.probe_cpu_seconds = 0.0
        self._num_probe_steps_at_start = self.num_probe_steps
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        # A loaded model or a new env: check that it can be branched (or grouped) only now, so that a model
        # can always be loaded to predict
        if self._attached_env is not self.env:
            self._attach(self.env)  # type: ignore[arg-type]
        return result

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """
        Collect groups with the current policy (pi_old) and turn their scores into advantages. Unlike the
        parent, the stepping is done by the group mechanism (branched probes or shared-seed episodes); the
        SB3 contract stays here: ``on_rollout_start``, per ``n_envs`` real steps ``update_locals`` +
        ``on_step`` (whichever envs stepped), the episode-info buffer, ``_last_obs``, ``on_rollout_end``.
        """
        assert self._last_obs is not None, "No previous observation was provided"
        buffer: GroupRolloutBuffer = rollout_buffer  # type: ignore[assignment]
        self.policy.set_training_mode(False)
        callback.on_rollout_start()
        old_policy = OldPolicy(self.policy, self.reward_model, self.gamma)
        on_real_steps = self._real_steps_reporter(callback)
        buffer.reset()
        n_collected = 0
        while True:
            steps_before = self.num_timesteps
            rollout = self.groups.collect(old_policy, env, self._last_obs, n_rollout_steps, on_real_steps)
            if rollout is None:
                return False
            n_collected += 1
            # One function turns the scores of every group mechanism into advantages
            advantages = group_advantages(
                rollout.returns, rollout.weights, self.supervision, self.scale_rewards, leave_one_out=self.leave_one_out
            )
            buffer.add(rollout, advantages[tuple(rollout.index.T)], self.loss_weighting, self.dynamic_sampling)
            self.num_probe_steps += rollout.probe_steps
            self.probe_cpu_seconds += rollout.probe_cpu_s
            self._record_group_statistics(rollout, self.num_timesteps - steps_before)
            # DAPO's dynamic sampling: samples without signal are dropped, and pi_old keeps collecting (every step
            # counted) until the signal fills a minibatch or the budget is spent
            if not self.dynamic_sampling or buffer.size >= self.batch_size or self.num_timesteps >= self._total_timesteps:
                break
        self._n_rollouts += 1
        self.logger.record("rollout/rollouts_per_update", n_collected)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _real_steps_reporter(self, callback: BaseCallback) -> RealStepsCallback:
        """What a collector calls after each batch of real steps: SB3's per-step bookkeeping."""
        n_envs = self.n_envs

        def on_real_steps(new_obs: Any, dones: np.ndarray, infos: list[dict[str, Any]], n_stepped: int) -> bool:
            self.num_timesteps += n_stepped
            self._update_info_buffer(infos, dones)
            if new_obs is not None:
                self._last_obs = new_obs
                self._last_episode_starts = dones
            # Callbacks count n_envs real steps per on_step (progress bar, checkpoints, evaluations): call it once
            # per n_envs steps taken, also when a collector steps only some envs at a time
            self._unreported_steps += n_stepped
            while self._unreported_steps >= n_envs:
                self._unreported_steps -= n_envs
                callback.update_locals({"infos": infos, "dones": dones, "new_obs": new_obs})
                if not callback.on_step():
                    return False
            return True

        return on_real_steps

    def _record_group_statistics(self, rollout: GroupRollout, real_steps: int) -> None:
        scores = rollout.returns[:, :, 0]  # each member's first return-to-go: its whole score
        n_groups = len(scores)
        zero_variance = zero_variance_mask(scores) if n_groups else np.zeros(0, dtype=bool)
        self.logger.record("rollout/probe_steps", self.num_probe_steps)
        self.logger.record("rollout/probe_steps_per_step", rollout.probe_steps / max(real_steps, 1))
        if rollout.probe_steps:
            self.logger.record("rollout/probe_steps_per_cpu_s", rollout.probe_steps / max(rollout.probe_cpu_s, 1e-9))
        self.logger.record("rollout/groups", n_groups)
        self.logger.record("rollout/group_reward_std", _mean_group_std(scores))
        self.logger.record("rollout/zero_variance_groups", int(zero_variance.sum()))
        self.logger.record("rollout/zero_variance_fraction", float(zero_variance.mean()) if n_groups else np.nan)
        # A group whose members all sent the same action to the env (e.g. a sure policy, or Box actions all
        # clipped to a bound) is uninformative whatever the reward: only groups with distinct actions tell
        # whether the reward can rank actions
        n_distinct = int(rollout.distinct.sum())
        n_blind = int((rollout.distinct & zero_variance).sum())
        if n_blind > ZERO_VARIANCE_WARNING * max(n_distinct, 1) and not self._warned_zero_variance:
            self._warned_zero_variance = True
            if self.reward_model is None:
                source, fix = (
                    "the env reward",
                    "Use a longer `horizon`, or pass a `reward_function` that scores what the action changes.",
                )
            else:
                source = f"reward function {describe(self.reward_function)}"
                fix = (
                    "Score what the action changes (e.g. next velocities rather than next positions), use a longer "
                    "`horizon`, or use the env reward (reward_function=None)."
                )
            warnings.warn(
                f"{n_blind} of {n_distinct} groups whose members took different actions scored exactly the same: "
                f"{source} cannot tell the group's actions apart, so these groups carry no learning signal. {fix}",
                stacklevel=2,
            )

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        """Progress remaining, never below 0: the last rollout may overshoot ``total_timesteps``, and a schedule
        such as rl-zoo3's ``lin_`` (``progress * initial``) would then give a negative learning rate (gradient
        ascent) or clip range on the final update. With ``progress_counts_probes`` (a budget of simulator steps,
        as tuning sets), probe steps count towards ``total_timesteps`` too."""
        if self.progress_counts_probes:
            # SB3 extends total_timesteps by the real steps of earlier runs (reset_num_timesteps=False): their probe
            # steps too
            num_timesteps += self.num_probe_steps
            total_timesteps += self._num_probe_steps_at_start
        super()._update_current_progress_remaining(num_timesteps, total_timesteps)
        self._current_progress_remaining = max(0.0, self._current_progress_remaining)

    def train(self) -> None:
        """
        Update the policy on the rollout's group advantages. The path from scores to the loss:

        1. scores: the group mechanism fills a ``[n_groups, G, T]`` table of each member's discounted returns-to-go
           (``GroupRollout.returns``, NaN where a member has no step);
        2. advantages: :func:`~grpo_zoo.advantages.group_advantages` subtracts each step's group baseline and scales
           the differences (``scale_rewards``); ``collect_rollouts`` reads each sample's entry at its (group, member,
           step), ``GroupRollout.index``;
        3. weights: the buffer gives each sample its member's weight (1/G, or pi_old(a|s) in an exhaustive group),
           shared among a run's steps with ``loss_weighting="run"``;
        4. loss: :func:`~grpo_zoo.grpo.loss.minibatch_loss` normalises the weights over each minibatch and takes the
           weighted clipped surrogate, entropy and KL penalty (no value loss: the advantages are not a critic's).
           The same weights average ``approx_kl`` (which ``target_kl`` compares) and ``clip_fraction``. With
           ``normalize_advantage`` the minibatch's advantages are divided by their informative ones' root mean
           square, not re-centred: a sample without signal (advantage 0) keeps 0.
        """
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_low = self.clip_range(self._current_progress_remaining)  # type: ignore[operator, misc]
        clip_high = self.clip_range_high(self._current_progress_remaining)  # type: ignore[operator, misc]
        buffer: GroupRolloutBuffer = self.rollout_buffer  # type: ignore[assignment]
        self._refresh_reference()
        self.logger.record("train/clip_range", clip_low)
        self.logger.record("train/clip_range_high", clip_high)
        if buffer.size == 0:
            return  # no group this rollout (a small `branch_fraction`): nothing to learn from

        objective = Objective(clip_low, clip_high, self.ent_coef, self.beta, self.normalize_advantage)
        minibatches: list[LossStats] = []
        approx_kl_divs: list[float] = []  # of the last epoch, as SB3 logs them
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for batch in buffer.get(self.batch_size):
                loss, stats = minibatch_loss(self.policy, batch, objective, self.ref_policy)
                if not th.isfinite(loss):
                    raise ValueError(
                        f"GRPO training diverged: the loss is {loss.item()} at update {self._n_updates}. "
                        "Lower `learning_rate`, use `scale_rewards`, or check the reward function for huge values."
                    )
                minibatches.append(stats)
                approx_kl_divs.append(stats.approx_kl)
                if self.target_kl is not None and stats.approx_kl > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {stats.approx_kl:.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        kl_refs = [stats.kl_ref for stats in minibatches if stats.kl_ref is not None]
        self.logger.record("train/entropy_loss", np.mean([stats.entropy_loss for stats in minibatches]))
        self.logger.record("train/policy_gradient_loss", np.mean([stats.policy_loss for stats in minibatches]))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean([stats.clip_fraction for stats in minibatches]))
        self.logger.record("train/loss", loss.item())
        if kl_refs:
            self.logger.record("train/kl_ref", np.mean(kl_refs))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _refresh_reference(self) -> None:
        """Keep a frozen copy of the policy as pi_ref, refreshed every ``ref_update_interval`` rollouts."""
        if self.beta == 0:
            self.ref_policy = None
            return
        if self.ref_policy is None or (self._n_rollouts - 1) % self.ref_update_interval == 0:
            self.ref_policy = copy.deepcopy(self.policy)
            self.ref_policy.set_training_mode(False)
            for parameter in self.ref_policy.parameters():
                parameter.requires_grad_(False)

    def learn(
        self: SelfGRPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "GRPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfGRPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save as SB3 does. A reward function is stored as its import path; a callable that has none (a lambda,
        a closure, a function of ``__main__``) is left out, and ``load`` says how to pass it back.
        """
        reward_function, unsaved = self.reward_function, self._unsaved_reward_function
        specs = reward_function if isinstance(reward_function, list | tuple) else [reward_function]
        paths = [None if spec is None else import_path_of(spec) for spec in specs]
        if reward_function is not None and any(p is None for p in paths):
            self.reward_function = None
            self._unsaved_reward_function = ", ".join(describe(s) for s in specs)
        elif reward_function is not None:
            self.reward_function = paths if isinstance(reward_function, list | tuple) else paths[0]  # type: ignore[assignment]
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            self.reward_function, self._unsaved_reward_function = reward_function, unsaved

    @classmethod
    def load(
        cls: type[SelfGRPO],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfGRPO:
        """
        Load as SB3 does; a file that cannot be read as a model (a truncated zip, not a zip) is a ``ValueError``
        naming it, chained to what the reading raised. The parameters are SB3's ``BaseAlgorithm.load``'s.
        """
        check_model_file(path, custom_objects)
        return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "reward_model",
            "_reward_error",
            "groups",
            "_attached_env",
            "ref_policy",
            "_warned_zero_variance",
            "_unreported_steps",
            "_num_probe_steps_at_start",
            "progress_counts_probes",
        ]


def _mean_group_std(scores: np.ndarray) -> float:
    """Mean over groups of the (Bessel-corrected) std of their members' scores, [n_groups, G] with NaN for no member."""
    counts = (~np.isnan(scores)).sum(axis=1)
    compared = scores[counts >= 2]
    if not len(compared):
        return float("nan")
    return float(np.nanstd(compared, axis=1, ddof=1).mean())
