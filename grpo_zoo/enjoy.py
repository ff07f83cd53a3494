"""``python -m grpo_zoo.enjoy``: ``python -m rl_zoo3.enjoy`` with GRPO registered, same arguments."""

from grpo_zoo.zoo.run import run_zoo_script

if __name__ == "__main__":
    run_zoo_script("rl_zoo3.enjoy")
