"""The README's two commands: the test command is exactly what .ci/run runs, and both are shown as one line."""

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    return re.findall(r"```bash\n(python3 -m venv [^\n]*)\n```", (REPO_ROOT / "README.md").read_text())


def test_readme_test_command_is_ci_command():
    ci_command = re.search(r"^TEST_COMMAND='(.*)'$", (REPO_ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    assert ci_command is not None, "TEST_COMMAND not found in .ci/run"
    assert ci_command.group(1) in _readme_commands()


def test_readme_train_command():
    train = [command for command in _readme_commands() if "rl_zoo3.train" in command]
    assert len(train) == 1
    # A plain (non-editable) install, CPU torch first, then the zoo's own train command with grpo
    assert "pip install torch==2.13.0 && pip install . &&" in train[0]
    assert train[0].endswith("python -m rl_zoo3.train --algo grpo --env CartPole-v1")


def _after_quick_start():
    """The commands the README shows right after the Quick start, in the block marked for this test."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- after-quick-start: tests/test_cli_readme.py runs these -->\n```bash\n(.*?)```", readme, re.S)
    assert block is not None, "README.md has no after-quick-start block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


# plot_train only shows its figure: count the curves it drew instead
PLOT_TRAIN_LINES = (
    "import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
    "plt.show = lambda: print('curves:', len(plt.gca().lines)); "
    "from rl_zoo3.plots.plot_train import plot_train; sys.argv = sys.argv[1:]; plot_train()"
)


def test_commands_after_the_quick_start(tmp_path, run_cmd):
    # The Quick start's own training command, shortened: every command shown after it must work on its output
    run_cmd("python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n 3000 --seed 1", cwd=tmp_path).check()
    commands = _after_quick_start()
    assert any("rl_zoo3.enjoy" in c for c in commands) and any("plot_train" in c for c in commands)
    for command in commands:
        if "plot_train" in command:
            arguments = command.split("plot_train", 1)[1]
            run = run_cmd(f'python -c "{PLOT_TRAIN_LINES}" plot_train {arguments}', cwd=tmp_path).check()
            assert "curves: 1" in run.stdout, run.stdout  # episodes enough for the rolling window
        else:
            run_cmd(command, cwd=tmp_path).check()


def test_readme_lists_every_group_mode_and_what_it_reads():
    # The docs read the same registry as GRPO's checks and the sampler
    from grpo_zoo.groups.modes import MODES

    readme = (REPO_ROOT / "README.md").read_text()
    for name, spec in MODES.items():
        row = re.search(rf"^\| `{name}` \| (.*?) \| {re.escape(spec.summary)} \|$", readme, re.MULTILINE)
        assert row is not None, f"README.md has no group-mode row for {name!r} with its summary"
        assert re.findall(r"`(\w+)`", row.group(1)) == list(spec.arguments)
