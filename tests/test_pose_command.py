"""`engine pose`: JSON output, annotated files, keypoints files and one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.framework.cli import main
from engine.sources import open_streams, parse_source
from pose.base import People
from pose.keypoints_file import KeypointsFile, KeypointsWriter

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = "synthetic:A02?loops=1"
HAS_BLAZEPOSE = (REPO / "pose" / "blazepose.py").is_file()


def engine(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["pose", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def truth(source: str, n: int) -> np.ndarray:
    reader = next(open_streams(parse_source(source)))
    frames = [reader.read() for _ in range(n)]
    reader.close()
    return np.stack([f.keypoints[0] for f in frames])


def test_image_json_and_annotated_image(capsys, tmp_path, messi_path):
    image = cv2.imread(str(messi_path))
    rng = np.random.default_rng(0)
    recorded = rng.uniform([0, 0, 0.5], [image.shape[1], image.shape[0], 1.0], (2, 18, 3)).astype(np.float32)
    kp_file = tmp_path / "kp.jsonl"
    with KeypointsWriter(kp_file) as writer:
        writer.write("messi5.jpg", 0, People(recorded))
    out = tmp_path / "annotated.png"
    code, stdout, _ = engine(capsys, str(messi_path), "--pose", "replay", "--replay-file", str(kp_file),
                             "--json", "--out", str(out))
    assert code == 0
    result = json.loads(stdout)  # one object, nothing else on stdout
    assert result["backend"] == "replay" and result["size"] == [image.shape[1], image.shape[0]]
    assert "seq" not in result
    people = result["people"]
    assert len(people) == 2 and {p["track"] for p in people} == {0, 1}
    np.testing.assert_allclose(np.array([p["keypoints"] for p in people]), recorded, atol=0.01)
    for p in people:
        x0, y0, x1, y1 = p["box"]
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
    drawn = cv2.imread(str(out))
    assert drawn.shape == image.shape and (drawn != image).any()


def test_image_summary_without_json(capsys, messi_path, tmp_path):
    kp_file = tmp_path / "kp.npz"
    with KeypointsWriter(kp_file) as writer:
        writer.write("x", 0, People(np.full((1, 18, 3), 50, np.float32)))
    code, stdout, _ = engine(capsys, str(messi_path), "--pose", "replay", "--replay-file", str(kp_file))
    assert code == 0
    assert stdout.splitlines()[0].startswith("messi5.jpg: 1 person (replay, 548x342)")
    assert "18/18 joints" in stdout


def test_video_json_lines_follow_the_frames(capsys):
    code, stdout, _ = engine(capsys, SYNTHETIC, "--pose", "replay", "--frames", "5", "--json")
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [r["seq"] for r in lines] == list(range(5))
    assert {r["stream"] for r in lines} == {SYNTHETIC}  # a source's stream id is its whole string
    expected = truth(SYNTHETIC, 5)
    for record, kp in zip(lines, expected):
        assert record["size"] == [640, 480]
        np.testing.assert_allclose(record["people"][0]["keypoints"], kp, atol=0.01)
    assert len({r["people"][0]["track"] for r in lines}) == 1


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_annotated_video_and_keypoints_file(capsys, tmp_path, suffix):
    video, kp_file = tmp_path / f"out{suffix}", tmp_path / "kp.npz"
    code, stdout, _ = engine(capsys, SYNTHETIC, "--pose", "replay", "--frames", "12",
                             "--out", str(video), "--keypoints-out", str(kp_file))
    assert code == 0 and "12 frames" in stdout
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 12
    recorded = KeypointsFile(kp_file)
    assert len(recorded) == 12
    np.testing.assert_allclose(recorded.get(SYNTHETIC, 11).keypoints[0], truth(SYNTHETIC, 12)[11], atol=1e-4)


def test_bad_inputs_fail_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENPOSE_WEIGHTS", raising=False)
    broken_image = tmp_path / "broken.png"
    broken_image.write_bytes(b"not a png")
    broken_video = tmp_path / "broken.mp4"
    broken_video.write_bytes(b"\x00" * 1000)
    cases = [
        ((str(tmp_path / "absent.png"),), 2, "not found"),
        ((str(broken_image),), 2, "cannot be decoded"),
        ((str(broken_video),), 2, "broken.mp4"),
        ((SYNTHETIC, "--pose", "replay", "--out", str(tmp_path / "x.png")), 2, ".avi or .mp4"),
        ((SYNTHETIC, "--pose", "nosuch"), 3, "blazepose, openpose, replay"),
        ((SYNTHETIC, "--pose", "openpose", "--pose-weights", str(tmp_path)), 3, "pose_iter_440000.caffemodel"),
    ]
    for argv, expected_code, text in cases:
        code, stdout, stderr = engine(capsys, *argv)
        assert code == expected_code, argv
        assert stderr.startswith("error: ") and stderr.count("\n") == 1 and text in stderr, stderr


def test_replay_of_a_video_without_keypoints_explains_itself(tmp_path, vtest_path, monkeypatch):
    monkeypatch.delenv("ENGINE_REPLAY_FILE", raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "engine.framework.cli", "pose", str(vtest_path), "--pose", "replay", "--frames", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "keypoints file" in result.stderr


@pytest.mark.skipif(not HAS_BLAZEPOSE, reason="pose/blazepose.py not written yet")
def test_blazepose_finds_the_footballer(capsys, messi_path):
    code, stdout, _ = engine(capsys, str(messi_path), "--pose", "blazepose", "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["backend"] == "blazepose" and len(result["people"]) == 1
    kp = np.array(result["people"][0]["keypoints"])
    seen = kp[:, 2] > 0
    assert seen.sum() >= 12
    assert (kp[seen, 0] >= 0).all() and (kp[seen, 0] < 548).all() and (kp[seen, 1] < 342).all()


@pytest.mark.skipif(not HAS_BLAZEPOSE, reason="pose/blazepose.py not written yet")
def test_blazepose_on_a_real_video(capsys, vtest_path):
    code, stdout, _ = engine(capsys, str(vtest_path), "--pose", "blazepose", "--frames", "3", "--json")
    assert code == 0
    assert [json.loads(line)["seq"] for line in stdout.splitlines()] == [0, 1, 2]


def test_annotators_draw_limbs_boxes_and_labels_in_order():
    from pose.coco import LIMB_COLORS_BGR, LIMBS
    from pose.draw import BoxAnnotator, LabelAnnotator, SkeletonAnnotator, annotate_all, track_color

    kp = truth(SYNTHETIC, 1)
    people = People(kp, tracks=np.array([4], np.int32))
    frame = np.zeros((480, 640, 3), np.uint8)
    skeleton_only = SkeletonAnnotator(thickness=3, joint_radius=0)(frame.copy(), people)
    # The middle of each visible limb carries that limb's colour (later limbs may cover earlier ones).
    a, b = LIMBS[9]
    mid = np.rint((kp[0, a, :2] + kp[0, b, :2]) / 2).astype(int)
    assert tuple(int(v) for v in skeleton_only[mid[1], mid[0]]) == LIMB_COLORS_BGR[9]
    labels = {4: "waving"}
    drawn = annotate_all(frame.copy(), people, [SkeletonAnnotator(), BoxAnnotator(), LabelAnnotator(labels)])
    x0, y0, x1, y1 = np.rint(people.boxes[0]).astype(int)
    assert tuple(int(v) for v in drawn[(y0 + y1) // 2, x1]) == track_color(4)
    # The label box sits under the person's box; no label, nothing drawn there.
    assert drawn[y1 + 5: y1 + 25, x0: x0 + 40].any()
    labels.clear()
    unlabelled = annotate_all(frame.copy(), people, [LabelAnnotator(labels)])
    assert not unlabelled.any()
