"""The sink's files, as a user annotating a video offline gets them: annotated video, labels
JSONL, keypoints that the replay backend reads back; and what happens when a file cannot be written."""
from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from engine.framework.schema import LABEL_FIELDS
from stages.sink_writers import VideoRecorder
from pipeline_helpers import Engine, synthetic_frames, video_frames, write_clip_with_truth
from pose.base import People
from pose.blazepose import DETECTOR_FILE, LANDMARK_FILE, models_dir
from pose.keypoints_file import KeypointsFile

N_FRAMES = 90


@pytest.fixture(scope="module")
def model(window_model: Path) -> Path:
    return window_model


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    """A recorded video of one person waving (MJPG .avi), and its ground-truth keypoints file."""
    return write_clip_with_truth(tmp_path_factory.mktemp("clip"), N_FRAMES)


def pose_args(clip: tuple[Path, Path]) -> list[str]:
    """BlazePose where its weights are installed (the real thing), else the clip's ground truth."""
    if (models_dir() / "pose" / DETECTOR_FILE).exists() and (models_dir() / "pose" / LANDMARK_FILE).exists():
        return ["--pose", "blazepose"]
    return ["--pose", "replay", "--replay-file", str(clip[1])]


def output_args(out: dict[str, Path]) -> list[str]:
    return ["--record", str(out["out.mp4"]), "--labels-out", str(out["labels.jsonl"]), "--keypoints-out", str(out["kp.npz"])]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_offline_annotation_writes_every_frame_and_label(model: Path, clip: tuple[Path, Path], tmp_path: Path) -> None:
    video, _ = clip
    out = {name: tmp_path / name for name in ("out.mp4", "labels.jsonl", "kp.npz")}
    engine = Engine("--source", str(video), *pose_args(clip), "--model", str(model), "--pose-workers", "2",
                    *output_args(out))
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    # labels: the same objects a subscriber of the topic received, every one, in order
    written = read_jsonl(out["labels.jsonl"])
    assert written and all(set(label) == set(LABEL_FIELDS) for label in written)
    assert written == engine.labels
    # keypoints: every frame of the clip, readable by the replay backend
    keypoints = KeypointsFile(out["kp.npz"])
    assert sorted(seq for _, seq, _ in keypoints.frames()) == list(range(N_FRAMES))
    assert keypoints.streams == (str(video),)
    # video: every frame at the source's rate, with something drawn on it
    recorded, fps = video_frames(out["out.mp4"])
    source, _ = video_frames(video)
    assert len(recorded) == N_FRAMES and fps == pytest.approx(30.0)
    assert recorded[0].shape == source[0].shape
    changed = [np.mean(np.abs(r.astype(np.int16) - s.astype(np.int16)).max(axis=2) > 60) for r, s in zip(recorded, source)]
    assert min(changed) > 0.002  # skeleton and box on every frame, beyond compression noise
    assert max(changed[-20:]) > min(changed[:4])  # label text boxes appear once labels exist


def test_keypoints_file_replays_to_the_same_labels(model: Path, clip: tuple[Path, Path], tmp_path: Path) -> None:
    video, _ = clip
    kp = tmp_path / "kp.npz"
    first = Engine("--source", str(video), *pose_args(clip), "--model", str(model), "--keypoints-out", str(kp))
    code, _, err = first.wait(timeout=120)
    assert code == 0, err
    again = Engine("--source", str(video), "--pose", "replay", "--replay-file", str(kp), "--model", str(model))
    code, _, err = again.wait(timeout=120)
    assert code == 0, err

    def key(label: dict) -> tuple:
        return label["stream"], label["track"], label["seq_from"], label["seq_to"], label["label"], round(label["score"], 5)

    assert len(first.labels) >= (N_FRAMES - 8) // 4
    assert [key(label) for label in again.labels] == [key(label) for label in first.labels]


def test_unwritable_paths_are_refused_before_the_run(model: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    missing = tmp_path / "no" / "such" / "folder"
    engine = Engine("--source", "synthetic:?loops=1&subjects=9", "--model", str(model), "--pose-workers", "1",
                    "--record", str(missing / "out.mp4"), "--labels-out", str(a_file / "labels.jsonl"),
                    "--keypoints-out", str(missing / "kp.npz"))
    code, _, err = engine.wait(timeout=120)
    assert code == 2, err
    assert err.splitlines() == [f"error: video file {missing / 'out.mp4'}: folder {missing} does not exist; "
                                f"create it with mkdir -p {missing} or choose another path with --record"]
    assert engine.labels == [] and not missing.exists()


def test_disk_full_stops_one_file_not_the_run(model: Path) -> None:
    engine = Engine("--source", "synthetic:?loops=1&subjects=9", "--model", str(model), "--pose-workers", "1",
                    "--labels-out", "/dev/full")  # every write fails with ENOSPC, as on a full disk
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    assert len(engine.labels) > 20
    full = [line for line in err.splitlines() if "/dev/full" in line]
    assert full == ["warning: labels file /dev/full: the disk is full; choose a writable path with --labels-out "
                    "(the run goes on without this file, complete lines so far are kept)"], err


def test_recorder_stops_early_enough_to_keep_the_video_playable(tmp_path: Path) -> None:
    said: list[str] = []
    free = shutil.disk_usage(tmp_path).free
    recorder = VideoRecorder(tmp_path / "out.mp4", said.append, min_free_bytes=free + 2**40)
    frames, keypoints = synthetic_frames(10)
    for seq, (frame, kp) in enumerate(zip(frames, keypoints)):
        recorder.add("cam", seq, 30.0, People(kp[None]), frame, now_s=100.0 + seq)
    recorder.close()
    assert len(said) == 1 and re.fullmatch(
        rf"video file {re.escape(str(tmp_path / 'out.mp4'))}: stopped recording with \d+ MiB left on its disk, so that the "
        r"video so far stays playable; free space or record elsewhere with --record", said[0]), said
    written, _ = video_frames(tmp_path / "out.mp4")
    # Free space is checked a second (of frame time) after the first frame: frame 0 is written, then it stops.
    assert len(written) == 1


def test_sigterm_leaves_complete_files(model: Path, tmp_path: Path) -> None:
    out = {name: tmp_path / name for name in ("out.mp4", "labels.jsonl", "kp.npz")}
    engine = Engine("--source", "synthetic:", "--model", str(model), "--pose-workers", "1",
                    *output_args(out))
    assert engine.subscriber.wait_for(40, timeout=60)
    engine.signal(signal.SIGTERM)
    code, _, err = engine.wait(timeout=60)  # how fast it stops is measured by benchmarks
    assert code == 0, err
    lines = out["labels.jsonl"].read_text().splitlines()
    assert len(lines) >= 40 and all(json.loads(line)["label"] for line in lines)  # whole lines only
    frames, _ = video_frames(out["out.mp4"])
    keypoints = KeypointsFile(out["kp.npz"])
    assert len(frames) > 30 and len(keypoints) > 30
