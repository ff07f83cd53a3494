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
