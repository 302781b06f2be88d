"""`engine run`: the whole pipeline on one host."""
from __future__ import annotations

import argparse

from engine.framework.config import RunOptions


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the pipeline: source -> pose -> render -> classify -> labels",
                       description="Run the pipeline and publish labels on a ZeroMQ PUB socket (topic 'labels').")
    p.add_argument("--source", action="append", default=None,
                   help="camera:N, video file, image folder/glob, rtsp/http URL, mhad:S08/A03/R01, synthetic: (default); repeat for several streams")
    p.add_argument("--config", default=None, help="TOML file with run options (see configs/); flags override it")
    p.add_argument("--mhad-root", default=None, help="Berkeley MHAD root (or set MHAD_ROOT)")
    p.add_argument("--pose", default=None, help="pose backend: auto (default), replay, blazepose, openpose")
    p.add_argument("--pose-workers", type=int, default=None, help="pose worker processes (default: one per core)")
    p.add_argument("--pose-threads", type=int, default=None, help="inference threads per pose worker (default 1)")
    p.add_argument("--max-people", type=int, default=None, help="people tracked per frame (default 1)")
    p.add_argument("--pose-weights", default=None, help="folder with the OpenPose Caffe files")
    p.add_argument("--replay-file", default=None, help="keypoints file (.npz/.jsonl) for --pose replay")
    p.add_argument("--model", default=None, help="classifier .onnx (default: models/default.onnx)")
    p.add_argument("--publish", default=None, help="labels PUB endpoint (default tcp://127.0.0.1:5560)")
    p.add_argument("--realtime", action="store_true", default=None, help="pace recorded sources at their frame rate, dropping frames when behind")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--quiet", action="store_true", default=None, help="no status line and no printed labels")
    p.add_argument("--no-print-labels", dest="print_labels", action="store_false", default=None, help="do not print labels")
    p.add_argument("--ema", type=float, default=None, help="score smoothing over time, 0-1 (default 0.5)")
    p.add_argument("--unknown-below", type=float, default=None, help="label 'unknown' under this score")
    p.add_argument("--min-window", type=float, default=None, metavar="SECONDS",
                   help="a track's first label after this long, on a padded partial window (default: the model's min_window)")
    p.add_argument("--exit-on-source-loss", action="store_true", default=None, help="fail instead of reconnecting")
    p.add_argument("--curve-keys", default=None, help="CURVE key folder (engine keys generate DIR) for tcp endpoints")
    p.add_argument("--max-restarts", type=int, default=None, help="crashes of one stage within 60 s before giving up (default 5)")
    p.add_argument("--summary", default=None, help="write a JSON summary (rates, latency, drops per stage) here at exit")
    p.add_argument("--frames-endpoint", default=None, help="tcp endpoint for capture's output, for remote pose workers")
    p.add_argument("--poses-endpoint", default=None, help="tcp endpoint for render's input, for remote pose workers")
    p.add_argument("--view", nargs="?", const="8080", default=None, metavar="[HOST:]PORT",
                   help="serve a live web page (video, skeletons, labels, timeline, rates); default 127.0.0.1:8080")
    p.add_argument("--record", default=None, metavar="PATH", help="write the annotated video (*.mp4 or *.avi)")
    p.add_argument("--labels-out", default=None, metavar="PATH", help="write every label as one JSON object per line")
    p.add_argument("--keypoints-out", default=None, metavar="PATH",
                   help="write per-frame keypoints (*.npz or *.jsonl), read back by --pose replay --replay-file")
    p.add_argument("--monitor", default=None, metavar="ENDPOINT",
                   help="bind render's monitor PUB (frames, keypoints, tracks) here, e.g. tcp://0.0.0.0:5561 for `engine view`")


def run(args: argparse.Namespace) -> int:
    from engine.framework.config import build_options
    from engine.framework.supervisor import run_engine

    names = [n for n in RunOptions.__dataclass_fields__ if n != "debug"]
    overrides = {n: getattr(args, n, None) for n in names}
    overrides["debug"] = args.debug or None
    return run_engine(build_options(args.config, overrides))
