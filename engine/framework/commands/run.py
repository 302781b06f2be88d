"""`engine run`: the whole pipeline on one host."""
from __future__ import annotations

import argparse

from engine.framework.config import RunOptions
from engine.framework.options import add_options, given


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the pipeline: source -> pose -> render -> classify -> labels",
                       description="Run the pipeline and publish labels on a ZeroMQ PUB socket (topic 'labels').")
    p.add_argument("--config", default=None, metavar="PATH", help="TOML file with run options (see configs/); flags override it")
    add_options(p, RunOptions, overrides_only=True)


def run(args: argparse.Namespace) -> int:
    from engine.framework.config import build_options
    from engine.framework.supervisor import run_engine

    overrides = {**given(RunOptions, args), "debug": args.debug or None}
    return run_engine(build_options(args.config, overrides))
