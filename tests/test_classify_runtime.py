"""Sliding windows per track, resampling to the model's fps, batching, smoothing: real ONNX models."""
from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest

from engine.classify.runtime import (
    UNKNOWN,
    ClassifierRuntime,
    ClassifyOptions,
    LabelResult,
    frame_items,
    sequence_windows,
)
from engine.errors import ConfigError
from engine.classify.contract import load_contract
from pose.coco import L_WRIST, N_JOINTS, NOSE, R_WRIST
from tiny_models import GAIN, build_tiny_model

LABELS = ["hands_up", "hands_down", "other_a", "other_b"]
PUBLIC_FIELDS = {"stream", "track", "seq_from", "seq_to", "t_capture_ns", "t_publish_ns", "label", "score", "topk", "model"}

# x, y (pixels, y down) of a standing person; wrists are set per frame.
BODY = np.array(
    [[0, -150], [0, -120], [-35, -118], [-45, -60], [0, 0], [35, -118], [45, -60], [0, 0], [-18, -20],
     [-20, 70], [-22, 160], [18, -20], [20, 70], [22, 160], [-6, -156], [6, -156], [-14, -152], [14, -152]],
    np.float32,
)


def frame(wrist_y: float, x: float = 320.0, marker: float | None = None) -> np.ndarray:
    """float32[18, 3]: the person with both wrists at height wrist_y (pixels relative to the hips, up < 0).

    The neck is at -100 relative to the mid-hip (-20), so wrist_y < -120 means hands above the neck.
    `marker` replaces the nose x so a test can tell which source frame a window row came from.
    """
    kp = np.zeros((N_JOINTS, 3), np.float32)
    kp[:, :2] = BODY + (x, 260)
    kp[[R_WRIST, L_WRIST], 0] += (-50, 50)
    kp[[R_WRIST, L_WRIST], 1] = 260 + wrist_y
    kp[:, 2] = 0.9
    if marker is not None:
        kp[NOSE, 0] = marker
    return kp


UP, DOWN, LEVEL = -200.0, 0.0, -120.0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "w8s2": build_tiny_model(root / "w8s2.onnx", "keypoint_sequence", LABELS, window=8, stride=2, fps=30.0),
        "w8s2_15": build_tiny_model(root / "w8s2_15.onnx", "keypoint_sequence", LABELS, window=8, stride=2, fps=15.0),
        "logits": build_tiny_model(root / "logits.onnx", "keypoint_sequence", LABELS, window=8, stride=2, softmax=False),
        "batch1": build_tiny_model(root / "batch1.onnx", "keypoint_sequence", LABELS, window=8, stride=2, graph_batch=1),
        "image": build_tiny_model(root / "image.onnx", "skeleton_image", LABELS, window=4, stride=1, image_size=16),
        "sequence": build_tiny_model(root / "sequence.onnx", "skeleton_sequence", LABELS, window=4, stride=1, image_size=16),
        "pyramid": build_tiny_model(root / "pyramid.onnx", "skeleton_pyramid", LABELS, window=4, stride=1, image_size=16),
    }


def runtime(path, **options) -> ClassifierRuntime:
    return ClassifierRuntime(path, ClassifyOptions(**{"ema": 0.0, "topk": len(LABELS), **options}))


def feed(rt: ClassifierRuntime, frames: np.ndarray, fps: float = 30.0, track: int = 1, stream: str = "s", first_seq: int = 0):
    results = []
    for i, kp in enumerate(frames):
        seq = first_seq + i
        results += rt.update(stream, seq, fps, np.array([track], np.int32), {"keypoints": kp[None]}, 1000 + seq)
    return results


def scores(result: LabelResult) -> np.ndarray:
    by_label = dict(result.topk)
    return np.array([by_label[label] for label in LABELS])


def marked(n: int) -> np.ndarray:
    return np.stack([frame(DOWN, marker=float(i)) for i in range(n)])


# ---------------------------------------------------------------- windows


def test_window_boundaries_and_stride(models):
    results = feed(runtime(models["w8s2"]), marked(20))
    assert [(r.seq_from, r.seq_to) for r in results] == [(s, s + 7) for s in range(0, 13, 2)]
    assert [r.t_capture_ns for r in results] == [1000 + r.seq_to for r in results]
    assert all(r.track == 1 and r.stream == "s" and r.model == "w8s2" for r in results)


def test_sequence_windows_at_equal_rates_take_every_frame(models):
    contract = load_contract(models["w8s2"])
    windows = list(sequence_windows(contract, marked(20), 30.0))
    assert [(a, b) for a, b, _ in windows] == [(s, s + 7) for s in range(0, 13, 2)]
    for seq_from, _, items in windows:
        np.testing.assert_array_equal(items["keypoints"][:, NOSE, 0], np.arange(seq_from, seq_from + 8))


def chosen_frames(contract, source_fps: float, n: int = 60):
    return [(a, b, items["keypoints"][:, NOSE, 0].astype(int)) for a, b, items in sequence_windows(contract, marked(n), source_fps)]


@pytest.mark.parametrize("source_fps", [15.0, 25.0, 30.0, 60.0])
def test_resampling_picks_the_nearest_source_frame(models, source_fps):
    contract = load_contract(models["w8s2"])  # model at 30 fps
    windows = chosen_frames(contract, source_fps)
    assert windows
    for seq_from, seq_to, rows in windows:
        assert (rows[0], rows[-1]) == (seq_from, seq_to)
        assert (np.diff(rows) >= 0).all()
        # row times sit 1/30 s apart; each picks a source frame within half a source interval
        model_t = rows[0] / source_fps + np.arange(8) / 30.0
        drift = np.abs(rows / source_fps - model_t)
        assert drift.max() <= 1.0 / source_fps + 1e-9


@pytest.mark.parametrize("model, source_fps", [("w8s2", 15.0), ("w8s2", 30.0), ("w8s2_15", 30.0), ("w8s2_15", 15.0)])
def test_windows_cover_the_model_time_span_whatever_the_source_rate(models, model, source_fps):
    contract = load_contract(models[model])
    span_s = (contract.window - 1) / contract.fps
    windows = chosen_frames(contract, source_fps)
    for seq_from, seq_to, _ in windows:
        assert abs((seq_to - seq_from) / source_fps - span_s) <= 1.0 / source_fps + 1e-9
    # a new window every `stride` model frames, in source time too
    ends_s = np.array([b for _, b, _ in windows]) / source_fps
    np.testing.assert_allclose(np.diff(ends_s).mean(), contract.stride / contract.fps, rtol=0.05)


def test_15_to_30_repeats_each_frame_and_30_to_15_skips_every_other(models):
    up = chosen_frames(load_contract(models["w8s2"]), 15.0)
    np.testing.assert_array_equal(up[0][2], [0, 0, 1, 1, 2, 2, 3, 3])
    down = chosen_frames(load_contract(models["w8s2_15"]), 30.0)
    np.testing.assert_array_equal(down[0][2], np.arange(0, 16, 2))


def test_update_and_sequence_windows_agree(models):
    frames = np.stack([frame(UP if (i // 9) % 2 else DOWN, marker=float(i)) for i in range(40)])
    rt = runtime(models["w8s2"])
    live = feed(rt, frames, fps=15.0)
    contract = rt.contract
    offline = list(sequence_windows(contract, frames, 15.0))
    assert [(r.seq_from, r.seq_to) for r in live] == [(a, b) for a, b, _ in offline]
    probs = rt.classify_windows([items for _, _, items in offline])
    np.testing.assert_allclose(np.stack([scores(r) for r in live]), probs, atol=1e-6)


def test_gap_restarts_the_window(models):
    rt = runtime(models["w8s2"])
    first = feed(rt, marked(10))
    assert first
    later = feed(rt, marked(10), first_seq=40)  # 1 s later: motion is not continuous
    assert [(r.seq_from, r.seq_to) for r in later] == [(40, 47), (42, 49)]


def test_smoothing_starts_over_after_a_gap(models):
    rt = runtime(models["w8s2"], ema=0.9)
    before = feed(rt, np.stack([frame(DOWN)] * 12))
    assert before[-1].label == "hands_down"
    after = feed(rt, np.stack([frame(UP)] * 8), first_seq=60)
    assert after[0].label == "hands_up" and after[0].score > 0.9


# ---------------------------------------------------------------- the model's answer


def test_model_runs_and_follows_the_wrists(models):
    rt = runtime(models["w8s2"])
    up = feed(rt, np.stack([frame(UP)] * 8), track=1)
    down = feed(rt, np.stack([frame(DOWN)] * 8), track=2)
    assert up[-1].label == "hands_up" and up[-1].score > 0.9
    assert down[-1].label == "hands_down" and down[-1].score > 0.9
    assert up[-1].topk[0] == ["hands_up", up[-1].score]


def test_unknown_below_threshold(models):
    level = np.stack([frame(LEVEL)] * 8)
    result = feed(runtime(models["w8s2"], unknown_below=0.6), level)[-1]
    assert result.label == UNKNOWN and result.score < 0.6
    assert result.topk[0][0] in LABELS[:2]
    confident = feed(runtime(models["w8s2"], unknown_below=0.6), np.stack([frame(UP)] * 8))[-1]
    assert confident.label == "hands_up"


def test_topk_is_sorted_and_limited(models):
    result = feed(runtime(models["w8s2"], topk=3), np.stack([frame(UP)] * 8))[-1]
    assert len(result.topk) == 3
    assert [s for _, s in result.topk] == sorted((s for _, s in result.topk), reverse=True)
    assert result.score == result.topk[0][1]


def test_ema_smooths_per_track(models):
    frames = np.stack([frame(DOWN)] * 12 + [frame(UP)] * 12)
    raw = [scores(r) for r in feed(runtime(models["w8s2"]), frames)]
    smoothed = [scores(r) for r in feed(runtime(models["w8s2"], ema=0.7), frames)]
    expected = raw[0]
    np.testing.assert_allclose(smoothed[0], expected, atol=1e-6)
    for p, s in zip(raw[1:], smoothed[1:]):
        expected = 0.7 * expected + 0.3 * p
        np.testing.assert_allclose(s, expected, atol=1e-6)
    switch = next(i for i, p in enumerate(raw) if np.argmax(p) == 0)
    assert np.argmax(smoothed[switch]) == 1 and np.argmax(smoothed[-1]) == 0  # smoothing lags the switch


def test_runtime_applies_softmax_to_logits(models):
    frames = np.stack([frame(UP)] * 4 + [frame(LEVEL)] * 6)
    with_softmax = [scores(r) for r in feed(runtime(models["w8s2"]), frames)]
    from_logits = [scores(r) for r in feed(runtime(models["logits"]), frames)]
    np.testing.assert_allclose(from_logits, with_softmax, atol=1e-5)


# ---------------------------------------------------------------- many tracks


def test_batched_tracks_equal_one_by_one(models):
    rng = np.random.default_rng(3)
    n, tracks = 30, [4, 9, 17]
    clips = {t: np.stack([frame(rng.uniform(-220, 20), x=100.0 * t) for _ in range(n)]) for t in tracks}
    starts = {4: 0, 9: 3, 17: 5}  # tracks appear at different frames
    together = runtime(models["w8s2"], ema=0.5)
    batched = []
    for seq in range(n):
        present = [t for t in tracks if seq >= starts[t]]
        kp = np.stack([clips[t][seq] for t in present])
        batched += together.update("cam", seq, 30.0, np.array(present, np.int32), {"keypoints": kp}, seq)
    for t in tracks:
        alone = runtime(models["w8s2"], ema=0.5)
        own = feed(alone, clips[t][starts[t]:], track=t, stream="cam", first_seq=starts[t])
        mine = [r for r in batched if r.track == t]
        assert [(r.seq_from, r.seq_to) for r in mine] == [(r.seq_from, r.seq_to) for r in own]
        np.testing.assert_allclose([scores(r) for r in mine], [scores(r) for r in own], atol=1e-6)


def test_max_batch_and_fixed_batch_graphs_give_the_same_scores(models):
    contract = load_contract(models["w8s2"])
    frames = np.stack([frame(y) for y in np.linspace(-220, 20, 30)])
    windows = [items for _, _, items in sequence_windows(contract, frames, 30.0)]
    reference = runtime(models["w8s2"]).classify_windows(windows)
    assert reference.shape == (len(windows), len(LABELS))
    np.testing.assert_allclose(runtime(models["w8s2"], max_batch=2).classify_windows(windows), reference, atol=1e-6)
    np.testing.assert_allclose(runtime(models["batch1"]).classify_windows(windows), reference, atol=1e-6)


def test_untracked_people_are_skipped_and_streams_are_separate(models):
    rt = runtime(models["w8s2"])
    kp = np.stack([frame(UP), frame(DOWN)])
    results = []
    for seq in range(8):
        results += rt.update("a", seq, 30.0, np.array([-1, 5], np.int32), {"keypoints": kp}, seq)
        results += rt.update("b", seq, 30.0, np.array([5], np.int32), {"keypoints": kp[:1]}, seq)
    assert sorted((r.stream, r.track, r.label) for r in results) == [("a", 5, "hands_down"), ("b", 5, "hands_up")]
    assert rt.track_count() == 2
    rt.end_stream("a")
    assert rt.track_count() == 1


def test_absent_tracks_are_forgotten(models):
    rt = runtime(models["w8s2"], forget_after_s=1.0)
    kp = frame(DOWN)[None]
    rt.update("s", 0, 30.0, np.array([1], np.int32), {"keypoints": kp}, 0)
    for seq in range(1, 31):
        rt.update("s", seq, 30.0, np.array([2], np.int32), {"keypoints": kp}, seq)
    assert rt.track_count() == 2
    rt.update("s", 32, 30.0, np.array([2], np.int32), {"keypoints": kp}, 32)
    assert rt.track_count() == 1


def test_tracks_per_stream_are_bounded(models):
    rt = runtime(models["w8s2"], max_tracks_per_stream=3)
    kp = frame(DOWN)[None]
    for seq in range(10):
        rt.update("s", seq, 30.0, np.array([seq], np.int32), {"keypoints": kp}, seq)
    assert rt.track_count() == 3


# ---------------------------------------------------------------- image kinds


def solid(bgr: tuple[int, int, int], size: int) -> np.ndarray:
    return np.broadcast_to(np.array(bgr, np.uint8), (size, size, 3)).copy()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def tiny_image_probs(channel_means: np.ndarray) -> np.ndarray:
    """What tiny_models' image graph computes from one image's BGR means in [0, 1] (label j reads channel j % 3)."""
    return softmax(GAIN * channel_means[np.arange(len(LABELS)) % 3])


COLOURS = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (90, 90, 90)]


def test_skeleton_image_model_averages_the_window(models):
    rt = runtime(models["image"])
    results = []
    for seq, colour in enumerate(COLOURS):
        results += rt.update("s", seq, 30.0, np.array([0], np.int32), {"image": solid(colour, 16)[None]}, seq)
    assert len(results) == 1 and (results[0].seq_from, results[0].seq_to) == (0, 3)
    expected = np.mean([tiny_image_probs(np.array(c) / 255.0) for c in COLOURS], axis=0)
    np.testing.assert_allclose(scores(results[0]), expected, atol=1e-5)


def test_skeleton_sequence_model_sees_the_whole_window(models):
    rt = runtime(models["sequence"])
    results = []
    for seq, colour in enumerate(COLOURS):
        results += rt.update("s", seq, 30.0, np.array([0], np.int32), {"image": solid(colour, 16)[None]}, seq)
    expected = tiny_image_probs(np.mean(COLOURS, axis=0) / 255.0)
    np.testing.assert_allclose(scores(results[0]), expected, atol=1e-5)


def test_skeleton_pyramid_model_gets_every_level_in_order(models):
    rt = runtime(models["pyramid"])
    assert rt.keys == ("image_16", "image_8", "image_4", "image_2")
    results = []
    for seq in range(4):  # label j reads channel j % 3 of level j // 3: labels 0-2 level 16, label 3 level 8
        items = {"image_16": solid((255, 0, 0), 16)[None], "image_8": solid((0, 0, 0), 8)[None],
                 "image_4": solid((0, 0, 0), 4)[None], "image_2": solid((0, 0, 0), 2)[None]}
        results += rt.update("s", seq, 30.0, np.array([0], np.int32), items, seq)
    np.testing.assert_allclose(scores(results[0]), softmax(np.array([GAIN, 0, 0, 0])), atol=1e-5)


def test_image_models_draw_missing_images_from_keypoints(models):
    pytest.importorskip("pose.skeleton")
    rt = runtime(models["pyramid"])
    results = feed(rt, np.stack([frame(UP)] * 4))
    assert len(results) == 1 and results[0].label in LABELS


@pytest.mark.parametrize("name", ["image", "sequence", "pyramid"])
def test_frame_items_for_image_kinds(models, name):
    pytest.importorskip("pose.skeleton")
    contract = load_contract(models[name])
    items = frame_items(contract, np.stack([frame(UP), frame(DOWN), np.zeros((N_JOINTS, 3), np.float32)]))
    sizes = contract.pyramid_sizes if name == "pyramid" else (16,)
    keys = [f"image_{s}" for s in sizes] if name == "pyramid" else ["image"]
    assert set(items) == {"keypoints", *keys}
    for key, size in zip(keys, sizes):
        assert items[key].shape == (3, size, size, 3) and items[key].dtype == np.uint8
        assert items[key][0].any() and not items[key][2].any()  # nobody visible: black


def test_frame_items_for_keypoints(models):
    items = frame_items(load_contract(models["w8s2"]), np.stack([frame(UP)] * 2).astype(np.float64))
    assert set(items) == {"keypoints"} and items["keypoints"].dtype == np.float32 and items["keypoints"].shape == (2, 18, 3)


# ---------------------------------------------------------------- the public shape


def test_label_result_has_the_public_fields_and_packs(models):
    result = feed(runtime(models["w8s2"]), np.stack([frame(UP)] * 8))[0]
    names = {f.name for f in dataclasses.fields(LabelResult)}
    assert names == PUBLIC_FIELDS - {"t_publish_ns"}
    message = {**result.as_dict(), "t_publish_ns": 5}
    assert msgpack.unpackb(msgpack.packb(message)) == message


def test_bad_options_and_items_are_refused(models):
    with pytest.raises(ConfigError, match="ema"):
        ClassifyOptions(ema=1.0)
    with pytest.raises(ConfigError, match="topk"):
        ClassifyOptions(topk=0)
    rt = runtime(models["w8s2"])
    with pytest.raises(ValueError, match="source_fps"):
        rt.update("s", 0, 0.0, np.array([1], np.int32), {"keypoints": frame(UP)[None]}, 0)
    with pytest.raises(ValueError, match="rows"):
        rt.update("s", 0, 30.0, np.array([1, 2], np.int32), {"keypoints": frame(UP)[None]}, 0)
