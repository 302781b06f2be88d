"""The same recorded input gives the same keypoints, tracks and labels, with one pose worker or two.

Before chunked dealing (engine.framework.dispatch), ZeroMQ dealt frames to workers by timing
and each worker tracked what it happened to see: four runs of vtest.avi gave 336, 476, 437 and
328 labels.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from tests.media import MediaUnavailable, media_path
from tests.pipeline_helpers import run_cli

FRAMES = 150  # 5 s of vtest.avi: pedestrians crossing, enough for several labels per track


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first FRAMES frames of vtest.avi as JPEG files (decoding a JPEG gives the same pixels every time)."""
    try:
        video = media_path("vtest.avi")
    except MediaUnavailable as exc:
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("vtest")
    capture = cv2.VideoCapture(str(video))
    for i in range(FRAMES):
        ok, frame = capture.read()
        assert ok, f"vtest.avi ended before frame {i}"
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), frame)
    capture.release()
    return folder


def without_times(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("t_")} for r in records]


def run_once(clip: Path, out: Path, workers: int) -> tuple[list[dict], list[dict]]:
    out.mkdir()
    labels, keypoints = out / "labels.jsonl", out / "keypoints.jsonl"
    result = run_cli(
        "run", "--source", str(clip), "--pose", "blazepose", "--pose-workers", str(workers), "--max-people", "3",
        "--quiet", "--no-print-labels", "--labels-out", str(labels), "--keypoints-out", str(keypoints),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return without_times(labels), without_times(keypoints)


def test_two_runs_with_two_workers_and_one_with_one_give_identical_outputs(clip: Path, tmp_path: Path) -> None:
    first = run_once(clip, tmp_path / "a", workers=2)
    second = run_once(clip, tmp_path / "b", workers=2)
    single = run_once(clip, tmp_path / "c", workers=1)
    labels, keypoints = first
    assert len(keypoints) == FRAMES  # every frame, once, in order
    assert [r["seq"] for r in keypoints] == list(range(FRAMES))
    assert sum(len(r["people"]) for r in keypoints) > FRAMES  # several pedestrians are followed
    assert labels, "no labels: the comparison would prove nothing"
    assert second == first
    assert single == first
