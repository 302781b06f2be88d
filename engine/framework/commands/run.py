"""`engine run`: the whole pipeline on one host."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.framework.config import RunOptions
from engine.framework.options import add_options, given


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the pipeline: source -> pose -> render -> classify -> labels",
                       description="Run the pipeline and publish labels on a ZeroMQ PUB socket (topic 'labels').")
    p.add_argument("--config", default=None, metavar="PATH", help="TOML file with run options (see configs/); flags override it")
    add_options(p, RunOptions, overrides_only=True)


def check_outputs(options: RunOptions) -> None:
    """Refuse output files that cannot be written (ConfigError, exit 2) before any stage starts.

    The sink and the supervisor write them during or after the run; finding out then costs the
    whole run. Also refuses names whose extension picks no format (the sink would skip the file).
    """
    from engine.errors import ConfigError
    from engine.framework.media import VIDEO_CODECS
    from engine.paths import check_writable
    from pose.keypoints_file import SUFFIXES as KEYPOINTS_SUFFIXES

    formats = {"--record": (options.record, "video file", tuple(VIDEO_CODECS)),
               "--keypoints-out": (options.keypoints_out, "keypoints file", KEYPOINTS_SUFFIXES)}
    for flag, (path, what, suffixes) in formats.items():
        if path and Path(path).suffix.lower() not in suffixes:
            names = " or ".join(f"*{s}" for s in suffixes)
            raise ConfigError(f"{what} {path}: unknown format {Path(path).suffix or '(none)'!r}; name it {names} with {flag}")
    outputs = (("video file", options.record, "--record"), ("labels file", options.labels_out, "--labels-out"),
               ("keypoints file", options.keypoints_out, "--keypoints-out"), ("summary file", options.summary, "--summary"))
    for what, path, flag in outputs:
        if path:
            check_writable(path, what, flag)


def run(args: argparse.Namespace) -> int:
    from engine.framework.config import build_options
    from engine.framework.supervisor import run_engine

    overrides = {**given(RunOptions, args), "debug": args.debug or None}
    options = build_options(args.config, overrides)
    check_outputs(options)
    return run_engine(options)
