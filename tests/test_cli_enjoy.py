"""``rl_zoo3.enjoy`` / ``record_video`` / ``record_training`` with ``--algo grpo``, on the shared CartPole run."""

import os
import re
import shutil
from pathlib import Path

import imageio_ffmpeg
import pytest

N_STEPS = 100
# A fontconfig configuration without any font folder: a machine without fonts
NO_FONTS_CONF = '<?xml version="1.0"?>\n<fontconfig><dir>/nonexistent</dir></fontconfig>\n'


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


def _path_without_ffmpeg():
    # PATH without any system ffmpeg (this interpreter's folder stays first, see conftest.py)
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(folder for folder in folders if folder and not (Path(folder) / "ffmpeg").exists())


def test_record_training(cartpole_run, run_cmd, tmp_path):
    # One video per checkpoint, final and best model, captioned and joined with `ffmpeg`: here without a system
    # ffmpeg (imageio-ffmpeg's, put on PATH by grpo-zoo) and without fonts (fontconfig finds none)
    log_folder, experiment_dir, _ = cartpole_run
    fonts_conf = tmp_path / "fonts.conf"
    fonts_conf.write_text(NO_FONTS_CONF)
    env = {"PATH": _path_without_ffmpeg(), "FONTCONFIG_FILE": str(fonts_conf)}
    assert shutil.which("ffmpeg", path=env["PATH"]) is None
    videos = tmp_path / "videos"
    run = run_cmd(
        f"python -m rl_zoo3.record_training --algo grpo --env CartPole-v1 -f {log_folder} -n 50 -o {videos}", env=env
    ).check()
    assert "could not draw the caption" not in run.stderr, run.stderr
    video = videos / "training.mp4"
    assert video.is_file(), f"{sorted(path.name for path in videos.iterdir())}\n{run.stderr[-3000:]}"
    # Every video joined: final model, best model and each checkpoint, 50 steps each
    n_videos = 2 + len(_checkpoint_steps(experiment_dir))
    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert n_frames >= n_videos * 50, (n_frames, n_videos)


def test_ffmpeg_without_caption_when_drawtext_fails(run_cmd, tmp_path):
    # grpo_zoo.zoo.ffmpeg (record_training's ffmpeg without a system one): a caption ffmpeg cannot draw
    # (a font file that does not exist, and no font for fontconfig to fall back on) still gives the video
    source, output = tmp_path / "in.mp4", tmp_path / "out.mp4"
    ffmpeg = "python -m grpo_zoo.zoo.ffmpeg -hide_banner -loglevel error -y"
    run_cmd(f"{ffmpeg} -f lavfi -i testsrc=size=64x64:rate=10 -t 1 -pix_fmt yuv420p {source}").check()
    fonts_conf = tmp_path / "fonts.conf"
    fonts_conf.write_text(NO_FONTS_CONF)
    run = run_cmd(
        f"{ffmpeg} -i {source} -vf \"drawtext=fontfile=/nonexistent.ttf:text='final model'\" {output}",
        env={"FONTCONFIG_FILE": str(fonts_conf)},
    ).check()
    assert "could not draw the caption" in run.stderr
    assert imageio_ffmpeg.count_frames_and_secs(str(output))[0] == 10


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


def test_enjoy_where_the_reward_module_is_missing(tmp_path, run_cmd):
    # A model trained with an import-path reward of the user's own module, played from another folder
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "my_cartpole_reward.py").write_text(
        "def reward(state, action, next_state):\n    return -(next_state[:, 2:3] ** 2 + 0.1 * next_state[:, 3:4] ** 2)\n"
    )
    log_folder = tmp_path / "logs"
    run_cmd(
        f"python -m rl_zoo3.train --algo grpo --env CartPole-v1 -n 256 -f {log_folder} --eval-freq -1 "
        "-params reward_function:\"'my_cartpole_reward:reward'\" horizon:1",
        cwd=tmp_path / "train",
        env={"PYTHONPATH": str(tmp_path / "train")},
    ).check()
    (tmp_path / "elsewhere").mkdir()
    run = run_cmd(
        f"python -m rl_zoo3.enjoy --algo grpo --env CartPole-v1 -f {log_folder} -n 50 --no-render", cwd=tmp_path / "elsewhere"
    ).check()
    assert "my_cartpole_reward:reward, which cannot be loaded here" in run.stderr


def test_enjoy_a_damaged_model_names_it(cartpole_run, run_cmd, tmp_path):
    # A truncated model file (an interrupted copy): the last line names the file, not SB3's "No data found"
    _, experiment_dir, _ = cartpole_run
    copy = tmp_path / "logs" / "grpo" / "CartPole-v1_1"
    shutil.copytree(experiment_dir, copy)
    model = copy / "CartPole-v1.zip"
    model.write_bytes(model.read_bytes()[:5000])
    run = run_cmd(_enjoy(tmp_path / "logs"))
    run.check(returncode=1)
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"ValueError: {model} is not a readable model"), last_line
