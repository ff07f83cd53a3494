"""``python -m grpo_zoo.cli <script>``: ``python -m rl_zoo3.cli`` (train, enjoy, plot_train...) with GRPO registered."""

from grpo_zoo.zoo.run import run_zoo_script

if __name__ == "__main__":
    run_zoo_script("rl_zoo3.cli")
