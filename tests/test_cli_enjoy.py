"""``rl_zoo3.enjoy`` / ``record_video`` / ``record_training`` with ``--algo grpo``, on the shared CartPole run."""

import os
import re
import shutil
from pathlib import Path

import pytest

N_STEPS = 100


def _enjoy(log_folder):
    return f"python -m rl_zoo3.enjoy --algo grpo --env CartPole-v1 -f {log_folder} -n {N_STEPS} --no-render "


def _checkpoint_steps(experiment_dir):
    return sorted(int(re.findall(r"rl_model_(\d+)_steps", path.name)[0]) for path in experiment_dir.glob("rl_model_*.zip"))


@pytest.mark.parametrize("option", ["-P --deterministic", "--load-best", "--load-last-checkpoint"])
def test_enjoy(cartpole_run, run_cmd, option):
    log_folder, experiment_dir, _ = cartpole_run
    run = run_cmd(_enjoy(log_folder) + option).check()
    expected = {
        "--load-best": "best_model.zip",
        "--load-last-checkpoint": f"rl_model_{_checkpoint_steps(experiment_dir)[-1]}_steps.zip",
        "-P --deterministic": "CartPole-v1.zip",
    }[option]
    assert f"Loading {experiment_dir / expected}" in run.stdout


def test_enjoy_load_checkpoint(cartpole_run, run_cmd):
    log_folder, experiment_dir, _ = cartpole_run
    first = _checkpoint_steps(experiment_dir)[0]
    run = run_cmd(_enjoy(log_folder) + f"--load-checkpoint {first}").check()
    assert f"rl_model_{first}_steps.zip" in run.stdout


def test_record_video(cartpole_run, run_cmd, tmp_path):
    # Headless: SDL_VIDEODRIVER=dummy (conftest), render_mode="rgb_array" forced by record_video
    log_folder, _, _ = cartpole_run
    run_cmd(f"python -m rl_zoo3.record_video --algo grpo --env CartPole-v1 -f {log_folder} -n {N_STEPS} -o {tmp_path}").check()
    video = tmp_path / f"final-model-grpo-CartPole-v1-step-0-to-step-{N_STEPS}.mp4"
    assert video.is_file(), sorted(path.name for path in tmp_path.iterdir())
    assert video.stat().st_size > 0


def test_record_training(cartpole_run, run_cmd, tmp_path):
    # One video per checkpoint, final and best model, joined by the ffmpeg binary
    assert shutil.which("ffmpeg"), "rl_zoo3.record_training needs the ffmpeg binary (apt-get install ffmpeg)"
    log_folder, _, _ = cartpole_run
    run_cmd(f"python -m rl_zoo3.record_training --algo grpo --env CartPole-v1 -f {log_folder} -n 50 -o {tmp_path}").check()
    assert (tmp_path / "training.mp4").stat().st_size > 0


def _no_site_pythonpath():
    # What site.py would have put on sys.path, without running any .pth file
    import site

    import grpo_zoo
    import reward_fns

    paths = [*site.getsitepackages()]
    for package in (grpo_zoo, reward_fns):
        paths.append(str(Path(package.__file__).resolve().parent.parent))
    return os.pathsep.join(dict.fromkeys(paths))


def test_grpo_zoo_train_without_site(run_cmd):
    # `python -S` skips site-packages and their .pth files: `python -m grpo_zoo.train` registers GRPO itself
    run = run_cmd("python -S -m grpo_zoo.train --help", env={"PYTHONPATH": _no_site_pythonpath()}).check()
    assert "grpo}" in run.stdout


@pytest.mark.parametrize("script", ["enjoy", "record_video"])
def test_grpo_zoo_wrappers_without_site(cartpole_run, run_cmd, tmp_path, script):
    log_folder, experiment_dir, _ = cartpole_run
    extra = f"-o {tmp_path}" if script == "record_video" else "--no-render"
    run = run_cmd(
        f"python -S -m grpo_zoo.{script} --algo grpo --env CartPole-v1 -f {log_folder} -n 50 {extra}",
        env={"PYTHONPATH": _no_site_pythonpath()},
    ).check()
    assert f"Loading {experiment_dir / 'CartPole-v1.zip'}" in run.stdout
