"""
The observation spaces GRPO's policies take, checked on the env a zoo entry describes before the zoo builds its
VecEnvs: an env whose observation no SB3 policy takes (MiniGrid's Dict holds a Text "mission") ends the command with
one line naming the env and the fix, where the zoo would stop deep inside ``DummyVecEnv`` (``TypeError: 'NoneType'
object is not iterable``). Imports: gymnasium only.
"""

from typing import Any

from gymnasium import spaces

# What SB3's policies (and its VecEnvs' observation buffers) take, alone or as the values of a Dict
SUPPORTED_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# The policy SB3 needs for a Dict observation space
DICT_POLICY = "MultiInputPolicy"


def unsupported_part(space: spaces.Space) -> str | None:
    """
    :param space: An env's observation space
    :return: the part of ``space`` that no SB3 policy takes, described (e.g. "a Text space under key 'mission'"),
        or None when every part is supported
    """
    if isinstance(space, spaces.Dict):
        for key, subspace in space.spaces.items():
            if not isinstance(subspace, SUPPORTED_SPACES):  # a nested Dict too: SB3 refuses those
                return f"{_describe(subspace)} under key {key!r}"
        return None
    return None if isinstance(space, SUPPORTED_SPACES) else _describe(space)


def _describe(space: spaces.Space) -> str:
    """ "a Text space"; for a subclass of a gymnasium space other than ``Space`` itself, e.g. "a MySpace (a Text space)"."""
    own = type(space).__name__
    base = next((cls.__name__ for cls in type(space).__mro__ if cls.__module__.startswith("gymnasium.spaces")), own)
    return f"a {own} space" if base in (own, "Space") else f"a {own} (a {base} space)"


def check_observation_space(env_id: str, space: spaces.Space, policy: Any, entry_point: str = "") -> None:
    """
    Raise the error of an observation space GRPO cannot train on, with the fix.

    :param env_id: The env, for the message
    :param space: Its observation space, after the entry's ``env_wrapper``
    :param policy: The entry's ``policy`` (a name or a class)
    :param entry_point: The env's registered entry point (MiniGrid's get its own wrapper named)
    :raises ValueError: the space has a part no SB3 policy takes, or is a Dict and the policy is not MultiInputPolicy
    """
    part = unsupported_part(space)
    if part is not None:
        wrapper = "minigrid.wrappers.FlatObsWrapper" if "minigrid" in entry_point else "my_package.MyObservationWrapper"
        example = ", as the zoo's ppo.yml does for MiniGrid" if "minigrid" in entry_point else ""
        raise ValueError(
            f"{env_id}'s observation space has {part}, which no SB3 policy takes (GRPO's policies take Box, Discrete, "
            f"MultiDiscrete and MultiBinary spaces, and a Dict of them). Add an env_wrapper that turns the observation "
            f"into arrays{example}: -params env_wrapper:\"'{wrapper}'\", or env_wrapper: {wrapper} in an entry for "
            f"{env_id} in hyperparams/grpo.yml (or in your -conf file)."
        )
    policy_name = policy if isinstance(policy, str) else getattr(policy, "__name__", str(policy))
    if isinstance(space, spaces.Dict) and policy_name != DICT_POLICY:
        raise ValueError(
            f"{env_id}'s observation space is a Dict ({', '.join(space.spaces)}), which needs policy "
            f"'{DICT_POLICY}', got policy={policy_name!r}: -params policy:\"'{DICT_POLICY}'\", or an entry for "
            f"{env_id} in hyperparams/grpo.yml (or in your -conf file)."
        )
