"""Clips shorter than the model's window get labels: partial windows, the same in training,
`engine evaluate` and the live classify stage (real ONNX models, real processes and sockets)."""
from __future__ import annotations

import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from engine.classify.contract import load_contract, model_frames
from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, sequence_windows, track_windows
from engine.errors import ConfigError, DatasetError, ModelError
from engine.framework import transport
from engine.sources import synthetic
from pipeline_helpers import Engine, classify_process, synthetic_frames, write_mhad_fixture
from pose.coco import NOSE
from tiny_models import build_tiny_model
from trainer import dataset as ds
from trainer.config import config_from_dict
from trainer.evaluation import classify_sequence, evaluate
from trainer.metrics import summarize
from trainer.windows import build_windows, training_contract, window_index

LABELS = ["hands_up", "hands_down", "other_a", "other_b"]
WAVING = 4  # synthetic "waving two hands": the wrists go up and down, so scores move


def waving(n: int, subject: int = 9, start: int = 20) -> np.ndarray:
    """float32[n, 18, 3]: n frames at 30 fps from the middle of a synthetic wave."""
    return synthetic.motion(WAVING, synthetic.make_subject(subject), 1)[start : start + n]


def marked(n: int) -> np.ndarray:
    """n standing frames whose nose x is the frame's index, to read which frame a window row is."""
    kp = np.tile(synthetic.motion(0, synthetic.make_subject(1), 1)[:1], (n, 1, 1))
    kp[:, NOSE, 0] = np.arange(n)
    return kp


def rows(windows) -> list[list[int]]:
    return [items["keypoints"][:, NOSE, 0].astype(int).tolist() for _, _, items in windows]


def runtime(path: Path, **options) -> ClassifierRuntime:
    return ClassifierRuntime(path, ClassifyOptions(**{"ema": 0.0, "topk": 16, **options}))


def feed(rt: ClassifierRuntime, frames: np.ndarray, fps: float = 30.0, first_seq: int = 0, stream: str = "s"):
    out = []
    for i, kp in enumerate(frames):
        seq = first_seq + i
        out.append(rt.update(stream, seq, fps, np.array([0], np.int32), {"keypoints": kp[None]}, seq))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        # an old file: no min_window key, full windows only
        "old": build_tiny_model(root / "old.onnx", "keypoint_sequence", LABELS, window=8, stride=2, fps=30.0),
        "min3": build_tiny_model(root / "min3.onnx", "keypoint_sequence", LABELS, window=8, stride=2, fps=30.0, min_window=3),
        "images": build_tiny_model(root / "images.onnx", "skeleton_sequence", LABELS, window=6, stride=2, fps=30.0,
                                   image_size=16, min_window=2),
    }


# ---------------------------------------------------------------- the contract


def test_old_files_keep_full_windows_and_new_keys_are_checked(models, tmp_path):
    old = load_contract(models["old"])
    assert (old.min_window, old.padding) == (old.window, "first_frame")
    assert load_contract(models["min3"]).min_window == 3
    for value in ("0", "9", "x"):
        with pytest.raises(ModelError, match="'min_window'"):
            load_contract(build_tiny_model(tmp_path / f"bad{value}.onnx", "keypoint_sequence", LABELS, window=8, min_window=value))
    with pytest.raises(ModelError, match="'padding'.*first_frame"):
        load_contract(build_tiny_model(tmp_path / "pad.onnx", "keypoint_sequence", LABELS, window=8, min_window=3, padding="zeros"))


# ---------------------------------------------------------------- the windows


def test_partial_windows_repeat_the_first_frame_until_the_window_is_full(models):
    contract = load_contract(models["min3"])  # window 8, stride 2, min_window 3
    windows = list(track_windows(contract, marked(12), 30.0))
    assert [(w.seq_from, w.seq_to, w.frames) for w in windows] == [
        (0, 2, 3), (0, 4, 5), (0, 6, 7), (0, 7, 8), (2, 9, 8), (4, 11, 8)]
    assert rows(sequence_windows(contract, marked(12), 30.0))[:3] == [
        [0, 0, 0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 1, 2, 3, 4], [0, 0, 1, 2, 3, 4, 5, 6]]
    # an old file: the windows of today, nothing before the window is full
    old = list(track_windows(load_contract(models["old"]), marked(12), 30.0))
    assert [(w.seq_from, w.seq_to, w.frames) for w in old] == [(0, 7, 8), (2, 9, 8), (4, 11, 8)]


def test_partial_windows_follow_resampling(models):
    contract = load_contract(models["min3"])  # a 30 fps model fed at 15 fps: each frame twice
    assert rows(sequence_windows(contract, marked(3), 15.0)) == [[0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 1, 2]]


def test_a_live_track_gets_its_first_label_after_min_window(models):
    per_frame = feed(runtime(models["min3"]), waving(12))
    first = next(i for i, results in enumerate(per_frame) if results)
    assert first == 2 and per_frame[2][0].seq_from == 0 and per_frame[2][0].seq_to == 2
    old = feed(runtime(models["old"]), waving(12))
    assert next(i for i, results in enumerate(old) if results) == 7
    # the classify option overrides the file, both ways
    override = feed(runtime(models["old"], min_window_s=0.1), waving(12))  # 3 frames at 30 fps
    assert next(i for i, results in enumerate(override) if results) == 2
    full_only = feed(runtime(models["min3"], min_window_s=10.0), waving(12))
    assert next(i for i, results in enumerate(full_only) if results) == 7
    with pytest.raises(ConfigError, match="min_window_s"):
        ClassifyOptions(min_window_s=-1.0)


def test_a_gap_starts_partial_windows_again(models):
    rt = runtime(models["min3"])
    feed(rt, waving(12))
    later = [r for results in feed(rt, waving(6), first_seq=60) for r in results]
    assert [(r.seq_from, r.seq_to) for r in later] == [(60, 62), (60, 64)]


def test_live_and_offline_partial_windows_have_the_same_scores(models):
    for name in ("min3", "images"):
        kp = waving(5)  # shorter than either window
        live = [r for results in feed(runtime(models[name]), kp) for r in results]
        rt = runtime(models[name])
        windows, probs, _ = classify_sequence(rt, kp, 30.0)
        assert len(live) == len(windows) > 0 and all(w.frames < rt.contract.window for w in windows)
        assert [(r.seq_from, r.seq_to) for r in live] == [(w.seq_from, w.seq_to) for w in windows]
        got = np.array([[dict(r.topk)[label] for label in LABELS] for r in live])
        np.testing.assert_allclose(got, probs, atol=1e-6)


# ---------------------------------------------------------------- training


def test_training_windows_of_a_short_sequence_are_the_runtime_windows(models, tmp_path):
    contract = training_contract("keypoint_sequence", tuple(LABELS), 8, 2, 30.0, 0, min_window=3)
    model = load_contract(models["min3"])  # the same window, stride, fps, min_window, from a file
    for fps in (30.0, 15.0, 25.0):
        kp = marked(6)  # shorter than the window at every rate
        index = window_index(contract, len(kp), fps)
        assert len(index) > 0 and index.tolist() == rows(sequence_windows(model, kp, fps))
        live = [r for results in feed(runtime(models["min3"]), kp, fps=fps) for r in results]
        assert [(r.seq_from, r.seq_to) for r in live] == [(int(i[0]), int(i[-1])) for i in index]


def test_build_windows_keeps_short_sequences_and_the_start_of_long_ones():
    contract = training_contract("keypoint_sequence", tuple(LABELS), 8, 2, 30.0, 0, min_window=3)
    short, long = waving(5), waving(20, subject=3)
    data = ds.from_sequences([short, long, waving(2)], [0, 1, 0], LABELS, [1, 2, 3], 30.0)
    ws = build_windows(data, np.ones(3, bool), contract, stride=1)
    assert set(ws.sequence.tolist()) == {0, 1}  # two frames are fewer than min_window: no window
    assert ws.window_frames[ws.sequence == 0].tolist() == [3, 4, 5]
    assert ws.window_frames[ws.sequence == 1].tolist() == [3, 4, 5, 6, 7] + [8] * 13
    assert ws.partial.sum() == 8 and ws.labels[ws.sequence == 1].tolist() == [1] * 18
    index = window_index(contract, len(short), 30.0, stride=1)
    np.testing.assert_array_equal(ws.keypoints[:3], short[index])


def test_the_default_min_window_is_half_a_second_and_configurable():
    assert training_contract("keypoint_sequence", tuple(LABELS), 45, 3, 15.0, 0).min_window == 7
    assert training_contract("skeleton_lstm", tuple(LABELS), 30, 3, 10.0, 64).min_window == 5
    assert training_contract("keypoint_sequence", tuple(LABELS), 45, 3, 15.0, 0, min_window=45).min_window == 45
    assert model_frames(1.0, 15.0, 45) == 15 and model_frames(9.0, 15.0, 45) == 45 and model_frames(0.01, 15.0, 45) == 1
    assert config_from_dict({"min_window": 10}, "keypoint_tcn").min_window == 10
    with pytest.raises(ConfigError, match="min_window"):
        config_from_dict({"window": 8, "min_window": 9}, "keypoint_tcn")


def test_summary_splits_window_accuracy_by_partial_and_full():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]], np.float32)
    result = summarize(probs, np.zeros(4, np.int64), np.array([0, 0, 1, 1]), ("a", "b"),
                       partial=np.array([True, True, False, False]))
    assert result["n_partial_windows"] == 2 and result["top1_partial"] == 0.5 and result["top1_full"] == 1.0
    assert result["top1"] == 0.75 and result["n_sequences"] == 2  # every window counts, partial ones too


# ---------------------------------------------------------------- engine evaluate


def test_evaluate_labels_every_sequence_of_half_a_second(tmp_path):
    """A model with the trainer's default min_window, 3 s windows: clips of 0.5-2 s at 15, 20, 30 fps."""
    default = training_contract("keypoint_sequence", tuple(LABELS), 45, 3, 15.0, 0)
    model = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, window=45, stride=3, fps=15.0,
                             min_window=default.min_window)
    sequences, fps, long_enough = [], [], []
    for rate in (15.0, 20.0, 30.0):
        clip = synthetic.motion(WAVING, synthetic.make_subject(8), 1, fps=rate)
        for seconds in (0.3, 0.5, 0.8, 1.3, 2.0):
            n = int(np.ceil(seconds * rate))
            sequences.append(clip[:n])
            fps.append(rate)
            long_enough.append(seconds >= 0.5)
    data = ds.from_sequences(sequences, [0] * len(sequences), LABELS, [8] * len(sequences), fps)
    result = evaluate(str(model), data)
    assert result["sequences_without_window"] == 3 and result["n_sequences"] == sum(long_enough)
    assert result["n_partial_windows"] == result["n_windows"]  # all shorter than 3 s
    assert result["min_window"] == default.min_window and result["window"] == 45
    old_file = build_tiny_model(tmp_path / "old.onnx", "keypoint_sequence", LABELS, window=45, stride=3, fps=15.0)
    with pytest.raises(DatasetError, match="min-window"):
        evaluate(str(old_file), data)  # full windows only: not one of these clips has 3 s
    assert evaluate(str(old_file), data, min_window_s=0.5)["sequences_without_window"] == 3


# ---------------------------------------------------------------- live, for real


def _label_scores(labels: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[dict(lab["topk"]).get(n, np.nan) for n in names] for lab in labels])


def _assert_same_windows_and_scores(labels: list[dict], windows, probs, names: list[str]) -> None:
    assert [(lab["seq_from"], lab["seq_to"]) for lab in labels] == [(w.seq_from, w.seq_to) for w in windows]
    got = _label_scores(labels, names)
    seen = ~np.isnan(got)  # topk carries the best five
    assert (seen.sum(axis=1) == min(5, len(names))).all()
    np.testing.assert_allclose(got[seen], probs[seen], atol=1e-6)


def test_classify_stage_labels_a_short_clip_as_evaluate_scores_it(tmp_path):
    """The classify stage as its own process, fed over ZeroMQ like render feeds it."""
    model = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, window=16, stride=2, fps=15.0, min_window=7)
    clip = waving(24)  # 0.8 s at 30 fps: 12 model frames, fewer than 16
    # The stage waits for this subscriber (classify_process): no label goes out before it listens.
    with classify_process(model, "--ema", "0") as (proc, push, sub):
        for stream, frames in (("clip", clip), ("after", clip[:16])):
            for seq, kp in enumerate(frames):
                transport.send(push, {"stream": stream, "seq": seq, "t_capture_ns": time.time_ns(), "fps": 30.0,
                                      "tracks": [0]}, {"keypoints": kp[None].astype(np.float32)})
            transport.send(push, {"stream": stream, "seq": len(frames), "t_capture_ns": time.time_ns(), "eos": True})
        got, deadline = [], time.monotonic() + 30.0
        while time.monotonic() < deadline and proc.poll() is None and not (got and got[-1]["stream"] == "after"):
            if sub.poll(100):
                got.append(msgpack.unpackb(sub.recv_multipart()[1], raw=False))
    _, err = proc.communicate(timeout=10)
    assert got and got[-1]["stream"] == "after", err  # the stage works and publishes in order
    labels = [lab for lab in got if lab["stream"] == "clip"]
    windows, probs, _ = classify_sequence(runtime(model), clip, 30.0)  # what `engine evaluate` scores
    assert len(windows) == 3 and all(w.frames < 16 for w in windows)
    assert labels and labels[0]["seq_to"] == 12  # the 7th model frame, 0.4 s in: not the 16th
    _assert_same_windows_and_scores(labels, windows, probs, LABELS)


def test_engine_run_min_window_labels_a_short_replayed_clip_as_evaluate_does(tmp_path):
    """`engine run --min-window` with an old model file over a replayed MHAD-layout clip of 0.8 s."""
    names = list(synthetic.ACTIONS)
    model = build_tiny_model(tmp_path / "old.onnx", "keypoint_sequence", names, window=30, stride=2, fps=15.0)
    root = write_mhad_fixture(tmp_path / "mhad", {(8, WAVING + 1, 1): 24}, keypoints_out=tmp_path / "truth.npz")
    engine = Engine("--source", "mhad:S08", "--mhad-root", str(root), "--pose", "replay", "--replay-file",
                    str(tmp_path / "truth.npz"), "--model", str(model), "--pose-workers", "1", "--ema", "0",
                    "--min-window", "0.5")
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    keypoints = synthetic_frames(24, action=WAVING, subject_id=8)[1]  # what the fixture drew and the replay file holds
    data = ds.from_sequences([keypoints], [WAVING], names, [8], 30.0)
    result = evaluate(str(model), data, min_window_s=0.5)
    assert result["sequences_without_window"] == 0 and result["n_windows"] == result["n_partial_windows"] == 3
    windows, probs, _ = classify_sequence(runtime(model, min_window_s=0.5), keypoints, 30.0)
    labels = [lab for lab in engine.labels if lab["stream"] == "mhad:S08/A05/R01"]
    _assert_same_windows_and_scores(labels, windows, probs, names)
