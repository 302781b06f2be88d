from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import SourceError
from engine.sources import natural_key, open_streams, parse_source
from pipeline_helpers import write_mhad_fixture


def test_parse_forms(tmp_path: Path) -> None:
    assert parse_source("camera:0?width=640&height=480").kind == "camera"
    assert parse_source("camera:0").live
    assert parse_source("rtsp://10.0.0.5/stream").kind == "stream"
    assert parse_source("https://example.invalid/live.m3u8").live
    assert parse_source(str(tmp_path)).kind == "images"
    assert parse_source(str(tmp_path / "*.png")).kind == "images"
    spec = parse_source("synthetic:A05?loops=2&subjects=3-4")
    assert spec.params["actions"] == [4] and spec.params["subjects"] == [3, 4] and not spec.live


@pytest.mark.parametrize("text, message", [
    ("camera:x", "camera index must be a number"),
    ("camera:0?zoom=2", "unknown option 'zoom'"),
    ("synthetic:A12", "synthetic action must be A01-A11"),
    ("mhad:S13/A01/R01", "subjects are S01-S12"),
    ("mhad:8/3/1", "write mhad:S08/A03/R01"),
    ("missing.mp4", "file missing.mp4 not found"),
    ("ftp://x", "unknown source scheme 'ftp:'"),
])
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_source(text, mhad_root="/nonexistent")


def test_natural_sort() -> None:
    names = ["f10.png", "f2.png", "f1.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "f2.png", "f10.png"]


def test_whole_subject_replays_each_sequence_as_its_own_stream(tmp_path: Path) -> None:
    root = write_mhad_fixture(tmp_path, {(8, 3, 1): 4, (8, 3, 2): 3, (8, 11, 5): 2})
    streams = []
    for reader in open_streams(parse_source("mhad:S08", str(root))):
        frames = []
        while (frame := reader.read()) is not None:
            frames.append(frame)
        assert [f.seq for f in frames] == list(range(len(frames)))
        assert frames[0].image.shape == (480, 640, 3) and reader.fps == 30.0
        streams.append((reader.stream, len(frames)))
    assert streams == [("mhad:S08/A03/R01", 4), ("mhad:S08/A03/R02", 3), ("mhad:S08/A11/R05", 2)]


def test_video_file_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(12):
        writer.write(np.full((240, 320, 3), i * 20, np.uint8))
    writer.release()
    (reader,) = list(open_streams(parse_source(str(path))))
    frames = []
    while (frame := reader.read()) is not None:
        frames.append(frame)
    assert len(frames) == 12 and reader.fps == 25.0
    means = [float(f.image.mean()) for f in frames]
    assert means == sorted(means) and abs(means[5] - 100) < 3  # frames in order, content intact


def test_synthetic_source_carries_ground_truth() -> None:
    (reader,) = list(open_streams(parse_source("synthetic:A02?loops=1&subjects=9")))
    frame = reader.read()
    assert frame.keypoints.shape == (1, 18, 3) and frame.truth == "jumping jacks"
    assert frame.image.shape == (480, 640, 3) and frame.image.std() > 5


def test_synthetic_script_plays_its_segments_in_order_with_their_truth() -> None:
    (reader,) = list(open_streams(parse_source("synthetic:?script=standing:1,A02:1,walking:0.5&loops=1&subjects=9&fps=10")))
    truths = []
    while (frame := reader.read()) is not None:
        truths.append(frame.truth)
    assert truths == ["standing"] * 10 + ["jumping jacks"] * 10 + ["walking"] * 5


@pytest.mark.parametrize("name", ["standing", "walking", "other"])
def test_synthetic_source_plays_the_activities_beyond_mhad(name: str) -> None:
    (reader,) = list(open_streams(parse_source(f"synthetic:{name}?loops=1&subjects=9")))
    frame = reader.read()
    assert frame.truth == name and frame.keypoints.shape == (1, 18, 3)


def _frames(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((16, 16, 3), i * 20, np.uint8))


@pytest.mark.parametrize("suffix, n", [("/?fps=10", 3), ("?fps=10", 3), ("/*.png?fps=10", 3), ("/f?.png?fps=10", 3)])
def test_folders_and_globs_take_a_frame_rate(tmp_path: Path, suffix: str, n: int) -> None:
    """`frames/?fps=10` is the folder at 10 fps, not a glob matching nothing (issue 13)."""
    _frames(tmp_path / "frames", n)
    spec = parse_source(str(tmp_path / "frames") + suffix)
    assert spec.kind == "images" and spec.params == {"fps": 10.0}
    reader = next(open_streams(spec))
    assert reader.fps == 10.0
    assert sum(1 for _ in iter(reader.read, None)) == n


def test_a_question_mark_wildcard_stays_a_glob(tmp_path: Path) -> None:
    _frames(tmp_path / "frames", 3)
    spec = parse_source(str(tmp_path / "frames" / "f?.png"))
    assert spec.kind == "images" and spec.params == {}
    assert len(list(iter(next(open_streams(spec)).read, None))) == 3


def test_a_path_that_exists_as_written_is_never_split(tmp_path: Path) -> None:
    folder = tmp_path / "odd?fps=3"
    _frames(folder, 2)
    spec = parse_source(str(folder))
    assert spec.kind == "images" and spec.params == {} and spec.location == str(folder)


@pytest.mark.parametrize("suffix, message", [
    ("/?fsp=10", "unknown option 'fsp'; accepted: fps"),
    ("/?fps=0", "fps=0 is out of range 1..240"),
    ("/?fps=ten", "fps='ten' is not an integer"),
])
def test_folder_options_are_checked(tmp_path: Path, suffix: str, message: str) -> None:
    _frames(tmp_path / "frames", 1)
    with pytest.raises(SourceError, match=message):
        parse_source(str(tmp_path / "frames") + suffix)
