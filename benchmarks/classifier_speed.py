"""Classifier windows per second on one core (goal: at least 2,000 for a ~100k-parameter keypoint model).

    PYTHONPATH=. .venv/bin/python benchmarks/classifier_speed.py [--model PATH ...] [--seconds 2]
    PYTHONPATH=. .venv/bin/python benchmarks/classifier_speed.py --untrained stgcn --untrained keypoint_tcn --window 30 --batch 1

Default models: every .onnx under models/ that follows the model contract, plus tiny models
built on the fly (tests/tiny_models.py): the fixed-weight keypoint model, a ~98k-parameter
1D temporal conv net, and one skeleton_image / skeleton_sequence / skeleton_pyramid model.
`--untrained NAME` adds a trainer model (trainer/models, configs/models/NAME.toml params) with
random weights at --window frames, exported by tf2onnx in a child process so that TensorFlow
never loads into the measuring one (needs the [train] extra); speed does not depend on weights.
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


def untrained_model(name: str, window: int, folder: Path) -> Path:
    """Export trainer model `name` with random weights (this script's --export-untrained, in a child process)."""
    import subprocess

    out = folder / f"untrained_{name}_w{window}.onnx"
    command = [sys.executable, __file__, "--export-untrained", name, "--window", str(window), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"could not export untrained {name}: {done.stderr.strip().splitlines()[-1:]}")
    print(done.stdout.strip())
    return out


def export_untrained(name: str, window: int, out: Path) -> None:
    """Build trainer model `name` (its config's params, random weights) and write it as a contract ONNX file."""
    import tensorflow as tf
    import tf2onnx

    from engine.classify.contract import write_metadata
    from engine.classify.features import FEATURE_VERSION
    from trainer.config import load_config
    from trainer.export import OPSET
    from trainer.models import model_module

    tf.config.threading.set_intra_op_parallelism_threads(1)
    module = model_module(name)
    if module.INPUT_KIND != "keypoint_sequence":
        raise SystemExit(f"--untrained {name}: only keypoint_sequence models are built here")
    config = load_config(None, name).with_values({"window": window})
    labels = list(ACTIONS)
    model = module.build(config, len(labels))
    spec = (tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="features"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    write_metadata(proto, {
        "labels": labels, "input_kind": "keypoint_sequence", "image_size": 0, "window": window,
        "stride": max(1, window // 8), "fps": 15.0, "feature_version": FEATURE_VERSION,
        "trained_on": "untrained (random weights), for speed measurements only", "metrics": {},
    })
    out.write_bytes(proto.SerializeToString())
    print(f"# untrained {name}: {model.count_params()} parameters, window {window}")


def shipped_models() -> list[Path]:
    found = []
    for path in sorted((ROOT / "models").rglob("*.onnx")):
        try:
            if load_contract(path).input_kind == "pair":  # two people per window: fps.py measures it
                print(f"# skipped {path.relative_to(ROOT)}: a two-person (pair) model")
                continue
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", action="append", type=Path, help="classifier .onnx (repeatable); default: models/ + tiny models")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=32, help="windows per classify_windows call")
    parser.add_argument("--tracks", type=int, default=4, help="people per frame in the update measurement")
    parser.add_argument("--untrained", action="append", default=[], metavar="NAME",
                        help="also a trainer keypoint model (e.g. stgcn) with random weights (repeatable)")
    parser.add_argument("--window", type=int, default=30, help="model frames of --untrained models")
    parser.add_argument("--export-untrained", metavar="NAME", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_untrained:
        export_untrained(args.export_untrained, args.window, args.out)
        return
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"# pinned to CPU {cpu}; onnxruntime threads=1")
    with tempfile.TemporaryDirectory() as tmp:
        built = [untrained_model(name, args.window, Path(tmp)) for name in args.untrained]
        paths = (args.model or ([] if built else shipped_models() + tiny_models(Path(tmp)))) + built
        for path in paths:
            measure(path, args.seconds, args.batch, args.tracks)


if __name__ == "__main__":
    main()
