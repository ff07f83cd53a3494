"""
Reward functions for GRPO's state groups, one module per env: ``reward(state, action, next_state)``.

Batched torch tensors in the env's own (unnormalised) observation units: ``state`` and ``next_state``
``[B, *obs_shape]``, ``action`` ``[B, 1]`` (Discrete) or ``[B, action_dim]`` (Box, the action actually
applied); return ``[B, 1]`` (or ``[B]``). Refer to them by import path, e.g. in ``hyperparams/grpo.yml``:
``reward_function: "reward_fns.cartpole:reward"``. Nothing here imports grpo_zoo.
"""
