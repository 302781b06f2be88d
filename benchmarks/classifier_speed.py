"""Classifier windows per second on one core (goal: at least 2,000 for a ~100k-parameter keypoint model).

    PYTHONPATH=. .venv/bin/python benchmarks/classifier_speed.py [--model PATH ...] [--seconds 2]

Default models: every .onnx under models/ that follows the model contract, plus tiny models
built on the fly (tests/tiny_models.py): the fixed-weight keypoint model, a ~98k-parameter
1D temporal conv net, and one skeleton_image / skeleton_sequence / skeleton_pyramid model.
The process is pinned to one CPU, onnxruntime runs with one thread, and rates are per CPU
second of the process (robust to neighbours on a shared machine). For each model, in the
same run:

- onnx only: session.run on ready-made model inputs, batches of --batch windows (the baseline)
- classify_windows: the same windows from raw items (features or /255 scaling + inference)
- update: the live path, one stream with --tracks people fed frame by frame (windowing,
  batching across tracks, smoothing); windows/s counts the labels it returns
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine.classify.runtime import (  # noqa: E402
    ClassifierRuntime,
    ClassifyOptions,
    frame_items,
    model_inputs,
    sequence_windows,
)
from engine.errors import ModelError  # noqa: E402
from engine.classify.contract import load_contract  # noqa: E402
from engine.sources.synthetic import ACTIONS, make_subject, motion  # noqa: E402


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per CPU second of fn (which returns how many units it did), after one warm-up call.

    CPU time of this process, not wall time: the development machine is shared, and with one
    pinned core and one onnxruntime thread CPU time is what a dedicated core would take.
    """
    fn()
    done, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        done += fn()
    return done / elapsed


def tiny_models(folder: Path) -> list[Path]:
    from tiny_models import build_temporal_conv_model, build_tiny_model, parameter_count

    labels = list(ACTIONS)
    conv = build_temporal_conv_model(folder / "temporal_conv_98k.onnx", labels, window=30, stride=5)
    print(f"# temporal_conv_98k: {parameter_count(conv)} parameters, window 30, stride 5")
    return [
        build_tiny_model(folder / "tiny_keypoint_w30.onnx", "keypoint_sequence", labels, window=30, stride=5),
        conv,
        build_tiny_model(folder / "tiny_image_64_w10.onnx", "skeleton_image", labels, window=10, stride=5, image_size=64),
        build_tiny_model(folder / "tiny_sequence_64_w10.onnx", "skeleton_sequence", labels, window=10, stride=5, image_size=64),
        build_tiny_model(folder / "tiny_pyramid_64_w10.onnx", "skeleton_pyramid", labels, window=10, stride=5, image_size=64),
    ]


def shipped_models() -> list[Path]:
    found = []
    for path in sorted((ROOT / "models").rglob("*.onnx")):
        try:
            load_contract(path)
            found.append(path)
        except ModelError:
            print(f"# skipped {path.relative_to(ROOT)}: not a classifier (no model contract)")
    return found


def people_clip(frames: int, tracks: int) -> np.ndarray:
    """float32[frames, tracks, 18, 3] synthetic people doing MHAD actions, at 30 fps."""
    clips = []
    for t in range(tracks):
        kp = motion(t % len(ACTIONS), make_subject(t + 1), repetition=0, fps=30.0)
        clips.append(np.resize(kp, (frames,) + kp.shape[1:]))
    return np.stack(clips, axis=1)


def measure(path: Path, seconds: float, batch: int, tracks: int) -> None:
    runtime = ClassifierRuntime(path, ClassifyOptions(threads=1))
    contract = runtime.contract
    clip = people_clip(max(300, contract.window * 4), tracks)
    windows = [items for _, _, items in sequence_windows(contract, clip[:, 0], 30.0)]
    windows = (windows * (batch // max(len(windows), 1) + 1))[:batch]
    stacked = {key: np.stack([w[key] for w in windows]) for key in runtime.keys}
    feeds = None

    def onnx_only() -> int:
        nonlocal feeds
        if feeds is None:  # ready-made inputs, exactly what the runtime would feed
            feeds = _model_feeds(runtime, stacked)
        for chunk in feeds:
            runtime.session.run(None, chunk)
        return batch

    def classify() -> int:
        runtime.classify_windows(windows)
        return batch

    # Per-frame items as the render stage sends them (images drawn up front, not timed).
    items = [frame_items(contract, clip[i]) for i in range(len(clip))]
    ids = np.arange(tracks, dtype=np.int32)
    state = {"seq": 0}

    def live() -> int:
        labels = 0
        for frame in items:
            seq = state["seq"]
            labels += len(runtime.update("bench", seq, 30.0, ids, frame, seq))
            state["seq"] = seq + 1
        return labels

    base = rate(onnx_only, seconds)
    full = rate(classify, seconds)
    start_seq = state["seq"]
    t0 = time.process_time()
    live_windows = rate(live, seconds)
    live_frames = (state["seq"] - start_seq) * tracks / (time.process_time() - t0)
    print(
        f"{path.name:28s} {contract.input_kind:18s} W={contract.window:<3d} S={contract.stride:<2d} "
        f"onnx only {base:8.0f} win/s | classify_windows {full:8.0f} win/s | "
        f"update {live_windows:7.0f} win/s ({live_frames:7.0f} person-frames/s, {tracks} tracks)"
    )


def _model_feeds(runtime: ClassifierRuntime, stacked: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    arrays = model_inputs(runtime.contract, stacked)
    names = [i.name for i in runtime.session.get_inputs()]
    step = runtime.options.max_batch
    return [dict(zip(names, [a[i : i + step] for a in arrays])) for i in range(0, len(arrays[0]), step)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path, help="classifier .onnx (repeatable); default: models/ + tiny models")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=32, help="windows per classify_windows call")
    parser.add_argument("--tracks", type=int, default=4, help="people per frame in the update measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"# pinned to CPU {cpu}; onnxruntime threads=1")
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.model or shipped_models() + tiny_models(Path(tmp))
        for path in paths:
            measure(path, args.seconds, args.batch, args.tracks)


if __name__ == "__main__":
    main()
