"""
An ``ffmpeg`` for ``rl_zoo3.record_training`` on machines without one: imageio-ffmpeg's binary.

rl-zoo3's ``record_training`` captions the video of every checkpoint and joins them with
``os.system("ffmpeg ...")``. Without an ``ffmpeg`` on ``PATH`` each of those commands fails silently and the
script ends in a ``FileNotFoundError``, with no ``training.mp4``. So, right before ``rl_zoo3.record_training``
runs, the start-up hook calls :func:`provide_ffmpeg`: when there is no system ``ffmpeg``, it puts a directory on
``PATH`` whose ``ffmpeg`` runs ``python -m grpo_zoo.zoo.ffmpeg``, which

- runs imageio-ffmpeg's static build (a grpo-zoo dependency, also moviepy's; it has the ``drawtext`` filter);
- gives ``drawtext`` a font file (matplotlib's DejaVu Sans): otherwise ``drawtext`` asks fontconfig, and on a
  machine without fonts it fails with "Cannot find a valid font for the family Sans";
- if a captioned command fails anyway, runs it again without the caption, so the video is still made.

A system ``ffmpeg`` on ``PATH`` is left to do the work, as before.
Imports: the standard library (imageio-ffmpeg when run); nothing of rl_zoo3 or of the rest of grpo_zoo.
"""

import atexit
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

DRAWTEXT = "drawtext="
# Characters that would need escaping inside an ffmpeg filter graph: such a font path is not used
_FILTER_SPECIAL = set("'\\:,;[]")


def font_file() -> str | None:
    """:return: a TrueType font shipped with a dependency (matplotlib's DejaVu Sans, else pygame's), or None"""
    candidates = (("matplotlib", "mpl-data/fonts/ttf/DejaVuSans.ttf"), ("pygame", "freesansbold.ttf"))
    for package, relative_path in candidates:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            path = Path(location) / relative_path
            if path.is_file() and not _FILTER_SPECIAL & set(str(path)):
                return str(path)
    return None


def with_font(args: list[str], font: str | None) -> list[str]:
    """
    :param args: ffmpeg's arguments
    :param font: a font file for ``drawtext`` filters that name none (None: leave them to fontconfig)
    :return: the arguments, each ``-vf drawtext=...`` given the font file
    """
    if font is None:
        return list(args)
    return [
        f"{DRAWTEXT}fontfile={font}:{arg[len(DRAWTEXT) :]}" if arg.startswith(DRAWTEXT) and "fontfile=" not in arg else arg
        for arg in args
    ]


def without_drawtext(args: list[str]) -> list[str]:
    """:return: the arguments without their ``-vf drawtext=...`` filters (the video without its caption)"""
    kept: list[str] = []
    index = 0
    while index < len(args):
        if args[index] == "-vf" and args[index + 1 : index + 2] and args[index + 1].startswith(DRAWTEXT):
            index += 2
            continue
        kept.append(args[index])
        index += 1
    return kept


def main(argv: list[str] | None = None) -> int:
    """
    ``ffmpeg <args>`` with imageio-ffmpeg's binary, captions with a known font, and without them if that fails.

    :param argv: ffmpeg's arguments (default: ``sys.argv[1:]``)
    :return: ffmpeg's exit code
    """
    import imageio_ffmpeg

    args = list(sys.argv[1:] if argv is None else argv)
    executable = imageio_ffmpeg.get_ffmpeg_exe()
    code = subprocess.call([executable, *with_font(args, font_file())])
    plain = without_drawtext(args)
    if code != 0 and plain != args:
        print("grpo-zoo: ffmpeg could not draw the caption (drawtext): the video is made without it", file=sys.stderr)
        code = subprocess.call([executable, *plain])
    return code


def provide_ffmpeg(module_name: str = "rl_zoo3.record_training") -> None:
    """
    Put an ``ffmpeg`` on ``PATH`` (for this process and its children) if there is none; never raises.

    :param module_name: the module about to run (for the warning)
    """
    if shutil.which("ffmpeg"):
        return
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        bin_dir = tempfile.mkdtemp(prefix="grpo-zoo-ffmpeg-")
        atexit.register(shutil.rmtree, bin_dir, ignore_errors=True)
        script = Path(bin_dir) / "ffmpeg"
        script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m grpo_zoo.zoo.ffmpeg "$@"\n')
        script.chmod(0o755)
    except Exception as error:
        warnings.warn(
            f"grpo-zoo: {module_name} needs ffmpeg and none was found ({type(error).__name__}: {error}): "
            "install ffmpeg (e.g. apt-get install ffmpeg) or imageio-ffmpeg",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])


if __name__ == "__main__":
    sys.exit(main())
