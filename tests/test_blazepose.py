"""The BlazePose backend on real photos and video: one player, pedestrians, tracking, COCO-18."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose import coco, create_backend
from pose.anchors import AnchorOptions, ssd_anchors
from pose.base import PoseError, PoseOptions
from pose.blazepose import (
    BLAZE_FOR_COCO, MAX_GAP_FRAMES, PERSON_MIN_SCORE, BlazePoseBackend, coco18_from_blazepose, model_path, models_dir,
    tile_grid,
)
from pose.roi import roi_from_points, to_frame
from pose.smoothing import OneEuroFilter, OneEuroParams

# messi5.jpg (548x342): the player, judged by eye, spans from his raised right hand at the
# left edge (x ~ 68) to the toe of his left boot (x ~ 458), and from the top of his hair
# (y ~ 60) to the sole of the boot on the ground (y ~ 338). A margin of ~10 px around it:
MESSI_BOX = (55, 48, 470, 342)
HEAD = [coco.NOSE, coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR]


@pytest.fixture(scope="module")
def backend() -> BlazePoseBackend:
    b = BlazePoseBackend(PoseOptions(max_people=1))
    yield b
    b.close()


@pytest.fixture(scope="module")
def messi(messi_path: Path) -> np.ndarray:
    image = cv2.imread(str(messi_path))
    assert image is not None
    return image


@pytest.fixture(scope="module")
def vtest_frames(vtest_path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(vtest_path))
    frames = []
    while len(frames) < 60:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 60
    return frames


class CountingBackend(BlazePoseBackend):
    """Counts detector calls, to see when the tracker skips the detector."""

    detector_calls = 0

    def _detect_regions(self, images_bgr):
        self.detector_calls += 1
        return super()._detect_regions(images_bgr)


# ------------------------------------------------------------------ models and anchors


def test_anchor_count_matches_the_detector_output():
    anchors = ssd_anchors()
    assert anchors.shape == (2254, 4)  # 28*28*2 + 14*14*2 + 7*7*6
    assert np.all((anchors[:, :2] > 0) & (anchors[:, :2] < 1))
    assert np.allclose(anchors[:2, :2], 0.5 / 28) and np.allclose(anchors[-1, :2], 6.5 / 7)
    unfixed = ssd_anchors(AnchorOptions(fixed_anchor_size=False))
    assert unfixed[0, 2] == pytest.approx(0.1484375) and unfixed[-1, 2] < 1.0


def test_models_exist_and_match_the_readme_hashes():
    readme = (models_dir() / "pose" / "README.md").read_text()
    for name in ("person_detection.onnx", "pose_landmark_full.onnx"):
        path = model_path(name)
        assert path.stat().st_size < 20 * 2**20
        match = re.search(rf"{re.escape(name)}\W+([0-9a-f]{{64}})", readme)
        assert match, f"README has no sha256 for {name}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == match.group(1)


def test_missing_model_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_MODELS_DIR", str(tmp_path))
    with pytest.raises(PoseError, match=r"person_detection\.onnx.*convert_person_detector\.py"):
        BlazePoseBackend(PoseOptions())


# ------------------------------------------------------------------ geometry and mapping


def test_roi_is_upright_for_a_standing_person_and_round_trips():
    roi = roi_from_points(np.array([100.0, 200.0]), np.array([100.0, 100.0]))
    assert roi.angle == pytest.approx(0.0) and roi.size == pytest.approx(250.0)
    tilted = roi_from_points(np.array([100.0, 200.0]), np.array([150.0, 150.0]))
    assert tilted.angle == pytest.approx(np.pi / 4)
    # the crop's top centre lies on the hips->head line, above the hips
    top = to_frame(np.array([[128.0, 0.0]]), tilted, 256)[0]
    direction = (top - [100, 200]) / np.linalg.norm(top - [100, 200])
    assert direction == pytest.approx(np.array([1, -1]) / np.sqrt(2), abs=1e-6)


@pytest.mark.parametrize("size", [(768, 576), (640, 480), (1920, 1080), (300, 1000)])
def test_tiles_cover_the_frame_and_overlap(size):
    w, h = size
    tiles = tile_grid(w, h)
    covered = np.zeros((h, w), np.int32)
    for x0, y0, x1, y1 in tiles:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 == y1 - y0
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    if len(tiles) > 1:  # neighbours overlap by about half a tile: a person on a seam is whole in one
        assert (covered >= 2).mean() > 0.3


def test_coco18_mapping_from_blazepose_landmarks():
    rng = np.random.default_rng(0)
    xy = rng.uniform(10, 90, (33, 2)).astype(np.float32)
    conf = rng.uniform(0.2, 1.0, 33).astype(np.float32)
    xy[27] = (150, 50)  # left ankle outside a 100x100 frame
    kp = coco18_from_blazepose(xy, conf, (100, 100))
    assert kp.shape == (18, 3)
    assert kp[coco.NECK, :2] == pytest.approx((xy[11] + xy[12]) / 2)
    assert kp[coco.NECK, 2] == pytest.approx(min(conf[11], conf[12]))
    # the anatomical sides: BlazePose 12 is the right shoulder, 11 the left; eyes 5/2, ears 8/7
    expected = {coco.R_SHOULDER: 12, coco.L_SHOULDER: 11, coco.R_WRIST: 16, coco.L_ANKLE: 27,
                coco.R_EYE: 5, coco.L_EYE: 2, coco.R_EAR: 8, coco.L_EAR: 7, coco.NOSE: 0}
    for joint, blaze in expected.items():
        assert kp[joint, :2] == pytest.approx(xy[blaze])
    assert kp[coco.L_ANKLE, 2] == 0.0  # out of frame = missing
    assert kp[coco.R_ANKLE, 2] == pytest.approx(conf[28])
    assert set(BLAZE_FOR_COCO) == set(range(18)) - {coco.NECK}


# ------------------------------------------------------------------ smoothing


def test_one_euro_removes_jitter_but_follows_motion():
    rng = np.random.default_rng(1)
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.5))
    still = [f(i / 30, np.array([5.0]) + rng.normal(0, 0.5, 1))[0] for i in range(90)]
    assert np.std(still[30:]) < 0.5 * 0.5
    f.reset()
    moving = [f(i / 30, np.array([10.0 * i]))[0] for i in range(60)]
    assert abs(moving[-1] - 590.0) < 0.05 * 590.0  # lag stays small at speed
    assert f(0.0, np.array([1.0]))[0] == 1.0  # time going back restarts the filter


# ------------------------------------------------------------------ real images


def test_messi_detector_finds_the_player(backend, messi):
    dets = [d for d in backend.detect(messi) if d.score >= PERSON_MIN_SCORE]
    assert len(dets) == 1
    x0, y0, x1, y1 = MESSI_BOX
    bx0, by0, bx1, by1 = dets[0].box
    assert x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1 + 5  # inside his box...
    assert (bx1 - bx0) * (by1 - by0) > 0.6 * (x1 - x0) * (y1 - y0)  # ...and most of it
    roi = dets[0].roi()
    assert x0 < roi.cx < x1 and y0 < roi.cy < y1 and roi.angle == 0.0


def test_messi_one_person_inside_his_box_upright(messi):
    backend = create_backend(PoseOptions(backend="blazepose", max_people=1))
    people = backend.estimate(messi, stream="messi")
    assert len(people) == 1
    kp = people.keypoints[0]
    seen = kp[:, 2] > 0.5
    assert seen.sum() >= 14
    x0, y0, x1, y1 = MESSI_BOX
    assert np.all((kp[seen, 0] > x0) & (kp[seen, 0] < x1) & (kp[seen, 1] > y0) & (kp[seen, 1] < y1))
    y = kp[:, 1]
    head = y[HEAD].mean()
    shoulders = y[[coco.R_SHOULDER, coco.L_SHOULDER]].mean()
    hips = y[[coco.R_HIP, coco.L_HIP]].mean()
    ankles = y[[coco.R_ANKLE, coco.L_ANKLE]].mean()
    assert head < shoulders < hips < ankles
    assert kp[coco.NECK, :2] == pytest.approx((kp[coco.R_SHOULDER, :2] + kp[coco.L_SHOULDER, :2]) / 2, abs=1e-3)
    # his right side is on the image's left (he faces the camera)
    assert kp[coco.R_WRIST, 0] < kp[coco.L_WRIST, 0]
    backend.close()


def test_single_person_tracking_skips_the_detector(messi):
    backend = CountingBackend(PoseOptions(max_people=1))
    first = backend.estimate(messi, "s", 0)
    calls_after_first = backend.detector_calls
    assert len(first) == 1
    settled = None
    for seq in range(1, 6):
        people = backend.estimate(messi, "s", seq)
        assert len(people) == 1
        settled = people if settled is None else settled
    assert backend.detector_calls == calls_after_first  # landmarks alone placed each crop
    # the tracked crop holds the same person: once the landmarks have placed it (the first crop
    # comes from the detector's box), joints stay put on a still image
    assert np.abs(people.keypoints[0, :, :2] - settled.keypoints[0, :, :2]).max() < 15
    # a jump in the stream's frame numbers forces a fresh detection
    backend.estimate(messi, "s", 6 + MAX_GAP_FRAMES + 1)
    assert backend.detector_calls > calls_after_first
    # another stream has its own state
    before = backend.detector_calls
    backend.estimate(messi, "other", 0)
    assert backend.detector_calls > before and len(backend.tracked("s")) == 1


def test_vtest_pedestrians_are_found_and_tracked(vtest_frames):
    backend = BlazePoseBackend(PoseOptions(max_people=3))
    counts, rois = [], []
    for seq, frame in enumerate(vtest_frames):
        people = backend.estimate(frame, "vtest", seq)
        counts.append(len(people))
        rois.append(dict(backend.tracked("vtest")))
        assert len(people) <= 3
        assert np.all(people.keypoints[..., 2] >= 0) and np.all(people.keypoints[..., 2] <= 1)
    assert sum(c > 0 for c in counts) >= 50, counts
    # consecutive frames: a track kept from one frame to the next moved its crop little
    kept = 0
    for before, after in zip(rois, rois[1:]):
        for tid in set(before) & set(after):
            a, b = before[tid], after[tid]
            assert np.hypot(a.cx - b.cx, a.cy - b.cy) < 0.2 * a.size
            assert 0.75 < b.size / a.size < 1.33
            kept += 1
    assert kept >= 50
    longest = max(sum(tid in r for r in rois) for tid in {t for r in rois for t in r})
    assert longest >= 30  # one pedestrian followed for at least a second


def test_people_of_consecutive_frames_match(vtest_frames):
    """The output, not only the crops: a person followed from one frame to the next moved little,
    and no person is reported twice."""
    backend = BlazePoseBackend(PoseOptions(max_people=3, smoothing=False))
    previous: dict[int, np.ndarray] = {}
    matched = 0
    for seq, frame in enumerate(vtest_frames[:30]):
        people = backend.estimate(frame, "v2", seq)
        ids = [tid for tid, _ in backend.tracked("v2")]  # in the order of the people returned
        assert len(ids) == len(people)
        current = dict(zip(ids, people.keypoints))
        for tid in set(previous) & set(current):
            a, b = previous[tid], current[tid]
            height = np.ptp(a[a[:, 2] > 0, 1])
            # pedestrians at 10 fps walk about a fifth of their height per frame
            assert np.linalg.norm(a[coco.NECK, :2] - b[coco.NECK, :2]) < 0.35 * height
            matched += 1
        necks = people.keypoints[:, coco.NECK, :2]
        for i in range(len(necks)):
            for j in range(i):
                assert np.linalg.norm(necks[i] - necks[j]) > 5, "one person reported twice"
        previous = current
    assert matched >= 20


def test_bad_frame_is_refused(backend):
    with pytest.raises(PoseError, match="BGR uint8"):
        backend.estimate(np.zeros((10, 10), np.uint8))


# ------------------------------------------------------------------ ONNX vs TFLite


def test_onnx_agrees_with_tflite_on_a_real_photo(messi, backend):
    """Needs the test extras `ai-edge-litert` and pip access to the pinned mediapipe wheel."""
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed "
                                 "(pip install ai-edge-litert==2.3.0) for the ONNX-vs-TFLite check")
    from media import MediaUnavailable, mediapipe_tflite

    try:
        lmk_tflite = mediapipe_tflite("pose_landmark_full.tflite")
    except MediaUnavailable as exc:
        pytest.skip(str(exc))

    def run_tflite(path: Path, x: np.ndarray) -> list[np.ndarray]:
        interp = litert.Interpreter(model_path=str(path), num_threads=1)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]

    # the landmark model on the crop the backend itself makes
    from pose.roi import warp_crop

    roi = backend.detect(messi)[0].roi()
    crop = cv2.cvtColor(warp_crop(messi, roi, 256), cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
    ref = {o.shape: o for o in run_tflite(lmk_tflite, crop)}
    got = {o.shape: o for o in backend.landmarker.run(None, {backend.landmarker.get_inputs()[0].name: crop})}
    assert np.abs(ref[(1, 195)] - got[(1, 195)]).max() < 1e-2  # crop pixels (0-256) and logits
    assert np.abs(ref[(1, 1)] - got[(1, 1)]).max() < 1e-4
