"""`engine stage NAME ...`: one stage alone, e.g. a pose worker on another host over tcp."""
from __future__ import annotations

import argparse
import os
import sys

STAGES = ("capture", "pose", "render", "classify")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stage", help="run one stage process alone (see `engine stage NAME --help`)")
    p.add_argument("name", choices=STAGES)
    p.add_argument("stage_args", nargs=argparse.REMAINDER, help="the stage's own options")


def run(args: argparse.Namespace) -> int:
    # By module name, as the supervisor does: engine/ never imports stages/.
    argv = [sys.executable, "-m", f"stages.{args.name}", *args.stage_args]
    os.execv(sys.executable, argv)
    return 0  # not reached
