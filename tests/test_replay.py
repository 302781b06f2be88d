"""Keypoints files round-trip in both formats; the replay backend serves them and given keypoints."""
from __future__ import annotations

import numpy as np
import pytest

from pose import PoseError, PoseOptions, create_backend
from pose.base import People
from pose.keypoints_file import KeypointsFile, KeypointsWriter
from pose.replay import ENV_FILE

FRAME = np.zeros((48, 64, 3), np.uint8)


def recorded(rng: np.random.Generator) -> list[tuple[str, int, People]]:
    frames = []
    for stream in ("camera:0", "mhad:S01/A01/R01"):
        for seq in range(4):
            n = seq % 3  # 0, 1, 2 people: a frame with nobody is recorded too
            kp = rng.uniform(0, 640, (n, 18, 3)).astype(np.float32)
            kp[..., 2] = rng.choice([0.0, 0.4, 1.0], (n, 18)).astype(np.float32)
            frames.append((stream, seq, People(kp, tracks=np.arange(n, dtype=np.int32) + 7)))
    return frames


@pytest.mark.parametrize("suffix", [".npz", ".jsonl"])
def test_round_trip(tmp_path, suffix):
    frames = recorded(np.random.default_rng(0))
    path = tmp_path / f"kp{suffix}"
    with KeypointsWriter(path) as writer:
        for stream, seq, people in frames:
            writer.write(stream, seq, people)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind
    file = KeypointsFile(path)
    assert len(file) == len(frames)
    assert file.streams == ("camera:0", "mhad:S01/A01/R01")
    for stream, seq, people in frames:
        got = file.get(stream, seq)
        assert got is not None and len(got) == len(people)
        np.testing.assert_allclose(got.keypoints, people.keypoints, rtol=1e-6)
        np.testing.assert_allclose(got.boxes, people.boxes, rtol=1e-6)
        np.testing.assert_array_equal(got.tracks, people.tracks)
    assert file.get("camera:0", 99) is None
    assert [(s, q) for s, q, _ in file.frames()] == sorted((s, q) for s, q, _ in frames)


def test_npz_is_written_on_close_and_loads_without_pickle(tmp_path):
    path = tmp_path / "kp.npz"
    writer = KeypointsWriter(path)
    writer.write("s", 0, People(np.ones((1, 18, 3), np.float32)))
    assert not path.exists()
    writer.close()
    with np.load(path, allow_pickle=False) as data:
        assert data["keypoints"].shape == (1, 18, 3) and data["streams"].tolist() == ["s"]


def test_bad_files_are_refused_with_the_path(tmp_path):
    with pytest.raises(PoseError, match="not found"):
        KeypointsFile(tmp_path / "absent.npz")
    with pytest.raises(PoseError, match="npz or"):
        KeypointsWriter(tmp_path / "kp.csv")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"stream": "s", "seq": 0, "people": []}\n{"seq": 1}\n')
    with pytest.raises(PoseError, match="line 2"):
        KeypointsFile(broken)
    partial = tmp_path / "partial.npz"
    np.savez(partial, keypoints=np.zeros((0, 18, 3), np.float32))
    with pytest.raises(PoseError, match="streams"):
        KeypointsFile(partial)


def test_replay_returns_given_keypoints():
    backend = create_backend(PoseOptions(backend="replay"))
    assert backend.name == "replay"
    given = np.random.default_rng(1).uniform(0, 50, (2, 18, 3)).astype(np.float32)
    people = backend.estimate(FRAME, "synthetic:", 0, given=given)
    np.testing.assert_array_equal(people.keypoints, given)
    assert people.boxes.shape == (2, 4)


def test_replay_without_keypoints_says_what_it_needs(monkeypatch):
    monkeypatch.delenv(ENV_FILE, raising=False)
    backend = create_backend(PoseOptions(backend="replay"))
    with pytest.raises(PoseError, match="synthetic:.*keypoints file"):
        backend.estimate(FRAME, "video.mp4", 0)


def test_replay_reads_a_file_named_in_the_environment(tmp_path, monkeypatch):
    frames = recorded(np.random.default_rng(2))
    path = tmp_path / "kp.jsonl"
    with KeypointsWriter(path) as writer:
        for stream, seq, people in frames:
            writer.write(stream, seq, people)
    monkeypatch.setenv(ENV_FILE, str(path))
    backend = create_backend(PoseOptions(backend="replay"))
    for stream, seq, people in frames:
        np.testing.assert_allclose(backend.estimate(FRAME, stream, seq).keypoints, people.keypoints, rtol=1e-6)
    assert len(backend.estimate(FRAME, "camera:0", 1000)) == 0
    with pytest.raises(PoseError, match="no stream 'other'"):
        backend.estimate(FRAME, "other", 0)


def test_replay_of_a_single_stream_file_ignores_the_stream_id(tmp_path, monkeypatch):
    path = tmp_path / "one.npz"
    kp = np.full((1, 18, 3), 5.0, np.float32)
    with KeypointsWriter(path) as writer:
        writer.write("/old/path/video.mp4", 3, People(kp))
    monkeypatch.setenv(ENV_FILE, str(path))
    backend = create_backend(PoseOptions(backend="replay"))
    np.testing.assert_array_equal(backend.estimate(FRAME, "video.mp4", 3).keypoints, kp)


def test_replay_file_option_wins_over_the_environment(tmp_path, monkeypatch):
    chosen, other = tmp_path / "chosen.jsonl", tmp_path / "other.jsonl"
    for path, value in ((chosen, 1.0), (other, 2.0)):
        with KeypointsWriter(path) as writer:
            writer.write("s", 0, People(np.full((1, 18, 3), value, np.float32)))
    monkeypatch.setenv(ENV_FILE, str(other))
    backend = create_backend(PoseOptions(backend="replay", replay_file=str(chosen)))
    assert backend.estimate(FRAME, "s", 0).keypoints[0, 0, 0] == 1.0
