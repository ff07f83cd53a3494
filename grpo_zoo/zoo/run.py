"""Run an rl-zoo3 script as ``__main__`` with GRPO registered, whether or not the ``.pth`` hook ran."""

import runpy


def run_zoo_script(module_name: str) -> None:
    """
    Register GRPO (for ``python -S``, frozen or ``GRPO_ZOO_NO_HOOK=1`` interpreters), then run the
    zoo script exactly as ``python -m <module_name>`` would, with the same command-line arguments.

    :param module_name: e.g. ``"rl_zoo3.train"``
    """
    from grpo_zoo.zoo.hook import register_grpo

    register_grpo()
    runpy.run_module(module_name, run_name="__main__", alter_sys=True)
