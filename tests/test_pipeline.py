"""The whole graph as users run it: real processes, real ZeroMQ sockets, a real subscriber."""
from __future__ import annotations

import os
import signal
from collections import defaultdict
from pathlib import Path

import cv2
import pytest

from engine.framework.schema import LABEL_FIELDS
from engine.sources.synthetic import ACTIONS
from pipeline_helpers import Engine, child_stage, children_of, is_running, synthetic_frames, write_mhad_fixture
from pose.base import People
from pose.keypoints_file import KeypointsWriter


def seqs_by_stream(labels: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for label in labels:
        out[label["stream"]].append(label["seq_to"])
    return dict(out)


def test_synthetic_source_end_to_end(window_model: Path) -> None:
    engine = Engine("--source", "synthetic:?loops=1&subjects=8", "--model", str(window_model), "--pose-workers", "2")
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    labels = engine.labels
    assert len(labels) > 50
    by_track: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for label in labels:
        assert set(label) == set(LABEL_FIELDS)
        assert label["label"] in ACTIONS and 0.0 <= label["score"] <= 1.0
        assert label["seq_to"] - label["seq_from"] + 1 == 8  # window of 8 at the source's own 30 fps
        assert label["t_publish_ns"] >= label["t_capture_ns"]
        assert label["model"] == "window"
        assert [n for n, _ in label["topk"]][0] == label["label"] or label["label"] == "unknown"
        by_track[(label["stream"], label["track"])].append(label)
    for track_labels in by_track.values():
        ends = [lab["seq_to"] for lab in track_labels]
        assert ends == sorted(ends) and len(set(ends)) == len(ends)
    assert "[done]" in err and "pose=replay" in err


@pytest.mark.parametrize("workers", [1, 3])
def test_mhad_layout_is_lossless_and_ordered(tmp_path: Path, per_frame_model: Path, workers: int) -> None:
    sizes = {(8, 1, 1): 120, (8, 2, 1): 90, (8, 2, 2): 100}
    root = write_mhad_fixture(tmp_path / "mhad", sizes, keypoints_out=tmp_path / "truth.npz")
    engine = Engine("--source", "mhad:S08", "--mhad-root", str(root), "--pose", "replay",
                    "--replay-file", str(tmp_path / "truth.npz"), "--model", str(per_frame_model),
                    "--pose-workers", str(workers))
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    got = seqs_by_stream(engine.labels)
    expected = {f"mhad:S{s:02d}/A{a:02d}/R{r:02d}": list(range(n)) for (s, a, r), n in sizes.items()}
    assert got == expected  # every frame exactly once, in order, each sequence its own stream


def test_video_file_and_image_folder_sources(tmp_path: Path, per_frame_model: Path) -> None:
    frames, keypoints = synthetic_frames(45)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        writer.write(frame)
        cv2.imwrite(str(folder / f"frame_{i}.png"), frame)  # frame_2 before frame_10: natural order
    writer.release()
    truth = tmp_path / "truth.jsonl"
    with KeypointsWriter(truth) as kp_writer:
        for stream in (str(video), str(folder)):
            for i, kp in enumerate(keypoints):
                kp_writer.write(stream, i, People(kp[None]))
    for source in (str(video), str(folder)):
        engine = Engine("--source", source, "--pose", "replay", "--replay-file", str(truth),
                        "--model", str(per_frame_model), "--pose-workers", "2")
        code, _, err = engine.wait(timeout=90)
        assert code == 0, err
        assert seqs_by_stream(engine.labels) == {source: list(range(45))}


def test_killed_stages_are_restarted_and_labels_resume(window_model: Path) -> None:
    engine = Engine("--source", "synthetic:", "--model", str(window_model), "--pose-workers", "2", "--duration", "60")
    try:
        assert engine.subscriber.wait_for(20, timeout=30)
        for module in ("stages.pose", "stages.render"):
            os.kill(child_stage(engine.proc.pid, module), signal.SIGKILL)
            before = len(engine.labels)
            assert engine.subscriber.wait_for(before + 20, timeout=15), f"labels did not resume after killing {module}"
    finally:
        engine.signal(signal.SIGINT)
        code, _, err = engine.wait(timeout=15)
    assert code == 0, err
    assert "restarting pose." in err and "restarting render" in err
    assert "restarts 2" in err.splitlines()[-1]


def test_sigint_stops_everything_cleanly(window_model: Path) -> None:
    engine = Engine("--source", "synthetic:", "--model", str(window_model), "--pose-workers", "2")
    assert engine.subscriber.wait_for(5, timeout=30)
    children = children_of(engine.proc.pid)
    assert len(children) == 5  # capture, 2 pose, render, classify
    cmdline = Path(f"/proc/{children[0]}/cmdline").read_bytes().decode().split("\0")
    run_dir = Path(next(a.split("ipc://", 1)[1] for a in cmdline if "ipc://" in a)).parent
    assert run_dir.is_dir()
    engine.signal(signal.SIGINT)
    code, _, err = engine.wait(timeout=60)  # a generous deadline: how fast it stops is measured by benchmarks
    assert code == 0, err
    assert [pid for pid in children if is_running(pid)] == []
    assert not run_dir.exists()  # no leftover ipc files
