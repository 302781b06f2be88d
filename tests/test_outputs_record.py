"""`--record` carries each person's action label, and frame N shows the label whose window ended at
or before N for that track, whatever the order labels and frames reach the recorder in."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from engine.framework import transport
from engine.framework.schema import LABELS_TOPIC, PROGRESS_TOPIC, encode_label
from engine.viewer.overlay import FrameOverlay
from pipeline_helpers import REPO, Engine, free_port, synthetic_frames, video_frames, write_clip_with_truth
from pose.base import People
from pose.keypoints_file import KeypointsFile
from stages.sink_writers import VideoRecorder

NAMES = ("clapping", "waving", "jumping jacks", "boxing", "bending", "punching", "throwing", "sit down")


def label(stream: str, track: int, seq_to: int, name: str, score: float) -> dict:
    return {"stream": stream, "track": track, "seq_from": max(0, seq_to - 7), "seq_to": seq_to, "t_capture_ns": 1,
            "t_publish_ns": 2, "label": name, "score": score, "topk": [[name, score]], "model": "test"}


def shown_labels(labels: list[dict], stream: str, seq: int) -> dict[int, dict]:
    """What frame `seq` must show: per track, the label with the latest window end at or before `seq`."""
    out: dict[int, dict] = {}
    for item in labels:
        if item["stream"] == stream and item["seq_to"] <= seq and item["seq_to"] >= out.get(item["track"], {"seq_to": -1})["seq_to"]:
            out[item["track"]] = item
    return out


def closest(recorded: np.ndarray, candidates: list[np.ndarray]) -> int:
    """Index of the candidate drawing the (lossy) recorded frame is nearest to."""
    errors = [np.abs(recorded.astype(np.int16) - c.astype(np.int16)).sum() for c in candidates]
    return int(np.argmin(errors))


def assert_labels_drawn(recorded: list[np.ndarray], sources: list[np.ndarray], people: list[People],
                        labels: list[dict], stream: str) -> None:
    """Each recorded frame is nearer its expected drawing than to the same frame with any other label state."""
    overlay = FrameOverlay()
    states = [{}] + [{item["track"]: item} for item in labels]  # nothing shown, or one of the labels
    assert len(recorded) == len(sources)
    for seq, (frame, source, who) in enumerate(zip(recorded, sources, people)):
        expected = shown_labels(labels, stream, seq)
        candidates = [overlay.draw(source, who, expected)]
        candidates += [overlay.draw(source, who, state) for state in states if state != expected]
        assert closest(frame, candidates) == 0, f"frame {seq} does not show {expected}"


# --- the drawing itself: a pure function of frame, people and labels ----------------------------------


def test_label_text_is_drawn_next_to_its_track_only() -> None:
    frames, keypoints = synthetic_frames(1)
    both = np.stack([keypoints[0], keypoints[0] + np.array([250, 0, 0], np.float32)])
    people = People(both, tracks=np.array([3, 5], np.int32))
    frame = frames[0]
    before = frame.copy()
    overlay = FrameOverlay()
    skeletons = overlay.draw(frame, people, {})
    labelled = overlay.draw(frame, people, {3: label("s", 3, 7, "waving", 0.91)})
    assert np.array_equal(frame, before)  # the input frame is left as it was
    changed = np.nonzero(np.any(labelled != skeletons, axis=2))
    assert len(changed[0]) > 200  # a text box with "waving 0.91" in it
    x0, y0, x1, y1 = people.boxes[0]
    # below track 3's box, starting at its left edge; nothing near track 5
    assert changed[1].min() >= int(x0) - 1 and changed[1].max() < people.boxes[1][0]
    assert changed[0].min() >= int(y1) - 1
    assert not np.array_equal(labelled, overlay.draw(frame, people, {3: label("s", 3, 7, "waving", 0.42)}))
    assert np.array_equal(overlay.draw(frame, people, {9: label("s", 9, 7, "waving", 0.9)}), skeletons)  # nobody is 9


# --- the recorder: frames wait until their labels are settled ---------------------------------------


def test_recorder_waits_for_the_labels_of_each_frame(tmp_path: Path) -> None:
    frames, keypoints = synthetic_frames(24)
    people = [People(kp[None], tracks=np.array([0], np.int32)) for kp in keypoints]
    recorder = VideoRecorder(tmp_path / "out.avi", [].append, delay_frames=64, delay_s=1e9)
    for seq, (frame, who) in enumerate(zip(frames, people)):
        recorder.add("cam", seq, 30.0, who, frame, now_s=0.0)
    assert recorder.frames == 0  # no label yet: nothing is settled
    labels = [label("cam", 0, 7, NAMES[0], 0.5), label("cam", 0, 11, NAMES[1], 0.6)]
    recorder.label(labels[0])
    recorder.flush(now_s=1.0)
    assert recorder.frames == 8  # frames 0-7: track 0's next label can only end after 7
    recorder.label(labels[1])
    recorder.passed("cam", 15)  # classify has passed frame 15: what frames up to it show is final
    recorder.flush(now_s=2.0)
    assert recorder.frames == 16
    recorder.end("cam")
    assert not recorder.complete("cam")
    recorder.passed("cam", None)  # classify ended the stream
    recorder.flush(now_s=3.0)
    assert recorder.frames == 24 and recorder.complete("cam")
    recorder.close()
    assert_labels_drawn(video_frames(tmp_path / "out.avi")[0], frames, people, labels, "cam")


def test_a_frame_with_nobody_tracked_needs_no_label(tmp_path: Path) -> None:
    frames, keypoints = synthetic_frames(3)
    recorder = VideoRecorder(tmp_path / "out.avi", [].append, delay_frames=64, delay_s=1e9)
    recorder.add("cam", 0, 30.0, People(np.zeros((0, 18, 3), np.float32)), frames[0], now_s=0.0)
    recorder.add("cam", 1, 30.0, People(keypoints[1][None], tracks=np.array([-1], np.int32)), frames[1], now_s=0.0)
    recorder.add("cam", 2, 30.0, People(keypoints[2][None], tracks=np.array([4], np.int32)), frames[2], now_s=0.0)
    assert recorder.frames == 2  # frame 2's track 4 may still get a label
    recorder.close()


# --- the sink stage as the engine starts it, fed over real sockets ----------------------------------


class SinkProcess:
    """`python -m stages.sink --lossless --record ...` fed by this test as render and classify would."""

    def __init__(self, record: Path) -> None:
        self.ctx = zmq.Context()
        ports = [free_port() for _ in range(3)]
        self.labels = self.ctx.socket(zmq.XPUB)  # an XPUB: it tells when the sink has subscribed
        self.labels.bind(f"tcp://127.0.0.1:{ports[0]}")
        self.feed = self.ctx.socket(zmq.PUSH)
        self.feed.bind(f"tcp://127.0.0.1:{ports[1]}")
        self.status = self.ctx.socket(zmq.PULL)
        self.status.bind(f"tcp://127.0.0.1:{ports[2]}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stages.sink", "--labels", f"tcp://127.0.0.1:{ports[0]}", "--monitor",
             f"tcp://127.0.0.1:{ports[1]}", "--lossless", "--record", str(record), "--status", f"tcp://127.0.0.1:{ports[2]}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        topics = set()
        while topics != {LABELS_TOPIC, PROGRESS_TOPIC}:
            assert self.labels.poll(30_000), "the sink never subscribed to labels and progress"
            message = self.labels.recv()
            if message[:1] == b"\x01":
                topics.add(message[1:])
        self.report(lambda r: r.get("ready"))

    def report(self, wanted, timeout_ms: int = 30_000) -> dict:
        while True:
            assert self.status.poll(timeout_ms), "the sink stopped reporting"
            report = msgpack.unpackb(self.status.recv(), raw=False)
            if wanted(report):
                return report

    def frame(self, stream: str, seq: int, people: People, frame: np.ndarray) -> None:
        header = {"stream": stream, "seq": seq, "t_capture_ns": seq, "fps": 30.0, "tracks": people.tracks.tolist()}
        transport.send(self.feed, header, {"keypoints": people.keypoints, "boxes": people.boxes, "frame": frame})

    def end(self, stream: str, seq: int) -> None:
        transport.send(self.feed, {"stream": stream, "seq": seq, "t_capture_ns": seq, "eos": True})

    def publish(self, item: dict) -> None:
        self.labels.send_multipart(encode_label(item, 2))

    def progress(self, body: dict) -> None:
        self.labels.send_multipart([PROGRESS_TOPIC, msgpack.packb(body)])

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.ctx.destroy(linger=0)
        return out


@pytest.mark.parametrize("tail", ["progress", "labels"])
def test_sink_draws_labels_that_come_after_their_frames(tmp_path: Path, tail: str) -> None:
    """Every frame and the stream's end are in the sink before any label (a classifier far behind):
    the video still shows, on frame N, each track's label whose window ended at or before N."""
    frames, keypoints = synthetic_frames(60)
    people = [People(kp[None], tracks=np.array([0], np.int32)) for kp in keypoints]
    sink = SinkProcess(tmp_path / "out.avi")
    try:
        sink.progress({"stream": "another", "eos": True})  # this classifier reports its progress
        for seq, (frame, who) in enumerate(zip(frames, people)):
            sink.frame("cam", seq, who, frame)
        sink.end("cam", len(frames))
        sink.report(lambda r: r.get("frames") == len(frames))  # the sink holds them all, none drawn yet
        last = 59 if tail == "labels" else 55  # "labels": the last frame has one; "progress": frames 56-59 have none
        labels = [label("cam", 0, seq_to, NAMES[i % len(NAMES)], 0.3 + 0.01 * i)
                  for i, seq_to in enumerate(range(7, last + 1, 4))]
        for item in labels:
            sink.publish(item)
        if tail == "progress":
            sink.progress({"stream": "cam", "seq": 57})
            sink.progress({"stream": "cam", "eos": True})
        report = sink.report(lambda r: "cam" in r.get("ended", []))
        assert report["labels"] == len(labels)
    finally:
        out = sink.stop()
    assert sink.proc.returncode == 0, out
    assert_labels_drawn(video_frames(tmp_path / "out.avi")[0], frames, people, labels, "cam")


# --- the whole engine: a recorded source, its video and its labels file ------------------------------


def test_recorded_run_draws_each_frames_labels(window_model: Path, tmp_path: Path) -> None:
    clip, _ = write_clip_with_truth(tmp_path, 90)
    out = {name: tmp_path / name for name in ("out.avi", "labels.jsonl", "kp.npz")}
    engine = Engine("--source", str(clip), "--pose", "replay", "--replay-file", str(tmp_path / "truth.npz"),
                    "--model", str(window_model), "--pose-workers", "1", "--record", str(out["out.avi"]),
                    "--labels-out", str(out["labels.jsonl"]), "--keypoints-out", str(out["kp.npz"]))
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    labels = [json.loads(line) for line in out["labels.jsonl"].read_text().splitlines()]
    assert labels and labels[0]["seq_to"] == 7  # window 8, stride 4
    seen = KeypointsFile(out["kp.npz"])
    people = [seen.get(str(clip), seq) for seq in range(90)]
    sources, _ = video_frames(clip)  # what capture decoded
    recorded, _ = video_frames(out["out.avi"])
    overlay = FrameOverlay()
    # frame 0: skeleton and box only; frame 7 on: the text of the first label under the person
    text_area = np.any(overlay.draw(sources[7], people[7], {0: labels[0]}) != overlay.draw(sources[7], people[7], {}), axis=2)
    assert text_area.sum() > 200
    assert np.abs(recorded[0].astype(np.int16) - overlay.draw(sources[0], people[0], {}).astype(np.int16))[text_area].mean() < 12
    assert np.abs(recorded[7].astype(np.int16) - overlay.draw(sources[7], people[7], {}).astype(np.int16))[text_area].mean() > 40
    assert_labels_drawn(recorded, sources, people, labels, str(clip))

