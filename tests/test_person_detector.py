"""The person detector (no face needed) and what it gives the BlazePose backend on real media.

Against the hand annotations in tests/data/people_annotations.json (people boxed by eye on
vtest.avi frames 0-100 every 5th frame, messi5.jpg, basketball1.png): most people at least
60 px tall are found, and no skeleton lies on anything but an annotated person.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose import coco
from pose.anchors import ssd_anchors
from pose.base import PoseOptions
from pose.blazepose import (
    BOX_TO_ROI, LANDMARK_SIZE, PERSON_MIN_SCORE, BlazePoseBackend, Detection, Track, assign_detections, model_path,
    overlaps, recentre_straddlers,
)
from pose.person_detector import ANCHORS, PERSON_FILE, decode, nms
from pose.roi import Roi

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = json.loads((REPO / "tests" / "data" / "people_annotations.json").read_text())
MIN_HEIGHT = ANNOTATIONS["min_height_px"]
# A skeleton lies on a person when half of its confident joints are inside the person's box grown
# by 10% of its height (boxes are drawn by eye; hands and feet sit on the edge).
MARGIN = 0.10


@pytest.fixture(scope="module")
def backend() -> BlazePoseBackend:
    b = BlazePoseBackend(PoseOptions(max_people=6))
    yield b
    b.close()


def photo(name: str) -> dict:
    return next(p for p in ANNOTATIONS["photos"] if p["media"] == name)


def on_person(skeleton: np.ndarray, box: list[int]) -> bool:
    """Half or more of the skeleton's confident joints inside the grown box."""
    x0, y0, x1, y1 = box
    m = MARGIN * (y1 - y0)
    seen = skeleton[skeleton[:, 2] >= 0.5, :2]
    if not len(seen):
        return False
    inside = (seen[:, 0] >= x0 - m) & (seen[:, 0] <= x1 + m) & (seen[:, 1] >= y0 - m) & (seen[:, 1] <= y1 + m)
    return inside.mean() >= 0.5


def test_anchors_match_the_model_output():
    anchors = ssd_anchors(ANCHORS)
    assert anchors.shape == (1917, 4)  # 19*19*3 + (10*10 + 5*5 + 3*3 + 2*2 + 1) * 6
    assert anchors[0, 2:] == pytest.approx([0.1, 0.1])  # the reduced lowest layer starts with (0.1, 1:1)
    assert anchors[1, 2] == pytest.approx(0.2 * np.sqrt(2)) and anchors[1, 3] == pytest.approx(0.2 / np.sqrt(2))
    assert anchors[-1, :2] == pytest.approx([0.5, 0.5])  # the last layer is one cell
    assert model_path(PERSON_FILE).stat().st_size > 10 * 2**20


def test_decode_and_nms_on_made_up_outputs():
    anchors = ssd_anchors(ANCHORS)
    enc = np.zeros((len(anchors), 4), np.float32)
    logits = np.full(len(anchors), -10.0, np.float32)
    a = 19 * 19 * 3 + 6 * 44  # the 1:1 anchor of cell (4, 4) in the 10x10 layer; a + 5 is its 1:1 at the next scale
    logits[a], logits[a + 5] = 2.0, 1.0  # two overlapping hits: the better one is kept
    enc[a] = [1.0, -1.0, 0.0, 0.0]  # centre moved by a tenth of the anchor: y down, x left
    boxes, scores = decode(enc, logits, anchors, 0.5)
    assert len(boxes) == 2
    cx, cy, w, h = anchors[a]
    assert boxes[0] == pytest.approx([cx - 0.1 * w - w / 2, cy + 0.1 * h - h / 2, cx - 0.1 * w + w / 2, cy + 0.1 * h + h / 2],
                                     abs=1e-5)
    kept, kept_scores = nms(boxes, scores, 0.4)
    assert len(kept) == 1 and kept_scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_a_box_becomes_an_upright_crop_around_it():
    det = Detection(np.array([100, 50, 140, 250], np.float32), 0.6)
    roi = det.roi()
    assert (roi.cx, roi.cy, roi.angle) == (120.0, 150.0, 0.0)
    assert roi.size == pytest.approx(BOX_TO_ROI * 200)
    assert overlaps(det.box, np.array([105, 60, 138, 240], np.float32))  # the same person, a little smaller
    assert not overlaps(det.box, np.array([150, 50, 190, 250], np.float32))  # the one beside


def test_a_skeleton_between_two_people_holds_one_and_is_put_back_on_it():
    """Two people side by side, one skeleton slid between them: it claims only the box it overlaps
    most, the other box is free for a new track, and its next crop is its own person's box."""
    left = Detection(np.array([560, 230, 600, 330], np.float32), 0.56)
    right = Detection(np.array([600, 230, 640, 330], np.float32), 0.54)
    between = Track(0, Roi(595, 280, 140, 0.1), np.array([570, 240, 625, 330], np.float32))
    alone = Track(1, Roi(100, 280, 120, 0.0), np.array([80, 230, 120, 330], np.float32))
    far = Detection(np.array([82, 232, 121, 331], np.float32), 0.6)
    detections = [left, right, far]
    assigned = assign_detections([between, alone], detections)
    assert assigned == {0: 0, 1: 2}  # one box each; the right-hand person is nobody's
    alone_roi = alone.roi
    recentre_straddlers([between, alone], detections, assigned)
    assert between.roi == left.roi() and between.box.tolist() == left.box.tolist()
    assert alone.roi == alone_roi  # on one person only: its own crop goes on


def test_both_players_on_the_basketball_photo(backend, basketball_path):
    """BlazePose's face-based detector found only one of them (the other has his face turned)."""
    image = cv2.imread(str(basketball_path))
    people = backend.estimate(image, "basketball")
    truth = [p for p in photo("basketball1.png")["people"] if p["height_px"] >= MIN_HEIGHT]
    assert len(truth) == 2 and len(people) == 2
    for person in truth:
        assert sum(on_person(s, person["box"]) for s in people.keypoints) == 1


def test_messi_and_no_skeleton_in_the_crowd(backend, messi_path):
    image = cv2.imread(str(messi_path))
    people = backend.estimate(image, "messi")
    boxes = [p["box"] for p in photo("messi5.jpg")["people"]]
    assert len(people) >= 1 and on_person(people.keypoints[0], boxes[0])
    assert all(any(on_person(s, b) for b in boxes) for s in people.keypoints)  # nobody in the stands


@pytest.mark.parametrize("turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE])
def test_a_person_lying_down_is_found_head_first(backend, messi_path, turn):
    """messi5.jpg turned a quarter: the person lies across the picture. The landmark model wants
    people upright in its crop, so a new box that is not clearly standing is also tried turned."""
    image = cv2.rotate(cv2.imread(str(messi_path)), turn)
    for seq in range(3):
        people = backend.estimate(image, f"lying{turn}", seq)
        assert len(people) == 1
    kp = people.keypoints[0]
    assert (kp[:, 2] > 0.5).sum() >= 14
    head_x = kp[coco.NOSE, 0]
    ankles_x = kp[[coco.R_ANKLE, coco.L_ANKLE], 0].mean()
    if turn == cv2.ROTATE_90_CLOCKWISE:  # his head was at the top: now on the right
        assert head_x > ankles_x + 100
    else:
        assert head_x < ankles_x - 100


def test_vtest_pedestrians_found_and_no_false_skeletons(vtest_path):
    """Every frame of the annotated stretch in order, as a stream: recall of people at least 60 px tall,
    and every skeleton of an annotated frame on an annotated person (the plastic bags and cones on
    the grass, the signs and the bollards get none)."""
    clip = ANNOTATIONS["clips"][0]
    truth = {f["frame"]: f["people"] for f in clip["frames"]}
    backend = BlazePoseBackend(PoseOptions(max_people=8))
    cap = cv2.VideoCapture(str(vtest_path))
    visible = found = skeletons = false = 0
    for seq in range(clip["last_frame"] + 1):
        ok, frame = cap.read()
        assert ok
        people = backend.estimate(frame, "vtest", seq)
        if seq not in truth:
            continue
        boxes = [p["box"] for p in truth[seq]]
        skeletons += len(people)
        false += sum(not any(on_person(s, b) for b in boxes) for s in people.keypoints)
        for p in truth[seq]:
            if p["height_px"] >= MIN_HEIGHT:
                visible += 1
                found += any(on_person(s, p["box"]) for s in people.keypoints)
    cap.release()
    backend.close()
    assert false == 0, f"{false} of {skeletons} skeletons on no annotated person"
    assert found / visible >= 0.7, f"found {found} of {visible} people at least {MIN_HEIGHT} px tall"


def test_batched_landmarks_equal_one_call_each(backend, vtest_path, monkeypatch):
    """All the people of a frame in one landmark call: the same numbers as one call each."""
    import pose.blazepose as bp

    cap = cv2.VideoCapture(str(vtest_path))
    ok, frame = cap.read()
    cap.release()
    rois = [d.roi() for d in backend.detect(frame) if d.score >= PERSON_MIN_SCORE]
    assert len(rois) >= 3
    monkeypatch.setattr(bp, "BATCH_LANDMARKS", True)
    batched = backend.landmarks_many(frame, rois)
    monkeypatch.setattr(bp, "BATCH_LANDMARKS", False)
    single = backend.landmarks_many(frame, rois)
    for (xy_b, conf_b, pres_b), (xy_s, conf_s, pres_s) in zip(batched, single):
        assert np.array_equal(xy_b, xy_s) and np.array_equal(conf_b, conf_s) and pres_b == pres_s
    assert backend.landmarker.get_inputs()[0].shape[1:] == [LANDMARK_SIZE, LANDMARK_SIZE, 3]


def test_reset_makes_a_stream_start_over(backend, vtest_path):
    """Recorded streams go to the workers in chunks that start with reset: the same frames after a
    reset give the same people, whatever came before."""
    cap = cv2.VideoCapture(str(vtest_path))
    frames = [cap.read()[1] for _ in range(12)]
    cap.release()
    first = [backend.estimate(f, "r", i).keypoints for i, f in enumerate(frames[6:])]
    for i, f in enumerate(frames[:6]):
        backend.estimate(f, "r2", i)
    backend.reset("r2")
    again = [backend.estimate(f, "r2", i).keypoints for i, f in enumerate(frames[6:])]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


# ------------------------------------------------------------------ ONNX vs the original TFLite

OBJECTRON_CACHE = REPO / ".cache" / "media" / "objectron-0.4.1675468480"


def objectron_tflite() -> Path:
    """The original .tflite, cut from the pinned npm package (fetched once with `npm pack`)."""
    sys.path.insert(0, str(REPO / "models" / "pose"))
    import convert_person_detector as conv

    out = OBJECTRON_CACHE / "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"
    if out.is_file():
        return out
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: cannot fetch @mediapipe/objectron for the ONNX-vs-TFLite check")
    OBJECTRON_CACHE.mkdir(parents=True, exist_ok=True)
    try:
        tgz = conv.fetch_tgz(OBJECTRON_CACHE)
    except (subprocess.CalledProcessError, SystemExit) as exc:
        pytest.skip(f"npm pack {conv.PACKAGE} failed ({exc}): no access to the npm registry")
    data = conv.packed_assets(tgz)[conv.TFLITE_MEMBER]
    assert hashlib.sha256(data).hexdigest() == conv.TFLITE_SHA256
    tmp = out.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    tgz.unlink()
    return out


def test_onnx_agrees_with_the_tflite_detector(backend, basketball_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed "
                                 "(pip install ai-edge-litert==2.3.0) for the ONNX-vs-TFLite check")
    from pose.person_detector import PERSON_CLASS, model_input

    interp = litert.Interpreter(model_path=str(objectron_tflite()), num_threads=1)
    interp.allocate_tensors()
    x = model_input(cv2.imread(str(basketball_path)))[None]
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    ref = {tuple(d["shape"]): interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    sess = backend.detector.session
    got = {o.shape: o for o in sess.run(None, {sess.get_inputs()[0].name: x})}
    assert np.abs(ref[(1, 1917, 4)] - got[(1, 1917, 4)]).max() < 1e-3
    sig = lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))  # noqa: E731
    assert np.abs(sig(ref[(1, 1917, 24)][..., PERSON_CLASS]) - sig(got[(1, 1917, 24)][..., PERSON_CLASS])).max() < 1e-5
