"""The supervisor's reading of status reports: checked fields, the status line, the summary, `lost`.

A Supervisor is planned as `engine run` plans it, its stages stand in real (idle) processes, so
the pid check on each report is the real one; reports go in as the bytes a stage sends.
"""
from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from engine.framework.config import RunOptions
from engine.framework.schema import BadStatus, decode_status
from engine.framework.supervisor import SILENT_S, Supervisor


@pytest.fixture
def supervisor(tmp_path: Path, window_model: Path) -> Iterator[Supervisor]:
    sup = Supervisor(RunOptions(source=("synthetic:",), model=str(window_model), pose_workers=2),
                     out=io.StringIO(), err=io.StringIO())
    sup.run_dir = tmp_path
    sup._plan("replay")
    sup.backend, sup.model_name = "replay", "window"
    idle = [sys.executable, "-c", "import time; time.sleep(120)"]
    for stage in sup.stages:
        stage.proc = subprocess.Popen(idle)
    try:
        yield sup
    finally:
        for stage in sup.stages:
            stage.proc.kill()
            stage.proc.wait()


def send(sup: Supervisor, stage: str, worker: int = 0, **fields: object) -> None:
    """One report as the stage's StatusReporter would push it."""
    known = sup._by_report_key.get((stage, worker))
    pid = known.proc.pid if known else 1
    sup._take_report(msgpack.packb({"stage": stage, "worker": worker, "pid": pid, "t_ns": time.time_ns(), **fields},
                                   use_bin_type=True))


def said(sup: Supervisor) -> list[str]:
    return sup.err.getvalue().splitlines()


def test_decode_status_keeps_known_fields_and_names_a_bad_one() -> None:
    raw = msgpack.packb({"stage": "render", "worker": 0, "pid": 7, "frames": 3, "future_field": [1]})
    assert decode_status(raw) == {"stage": "render", "worker": 0, "pid": 7, "frames": 3}
    with pytest.raises(BadStatus, match=r"status field frames=-3 must be a non-negative integer"):
        decode_status(msgpack.packb({"stage": "render", "worker": 0, "pid": 7, "frames": -3}))


def test_a_report_with_a_bad_value_is_counted_and_the_last_good_one_kept(supervisor: Supervisor) -> None:
    send(supervisor, "classify", frames=10, rate=5.0, labels=2)
    send(supervisor, "classify", frames="eleven", rate=5.0)
    send(supervisor, "classify", frames=11, rate=float("nan"))
    send(supervisor, "bogus", frames=1)
    assert supervisor.malformed_status == 3
    assert supervisor.reports[("classify", 0)]["frames"] == 10
    assert "frames 10 " in supervisor.status_line(1.0)
    assert supervisor.summary()["malformed_status"] == 3


def test_lost_is_what_dead_stages_held_never_what_a_live_capture_dropped(supervisor: Supervisor) -> None:
    send(supervisor, "capture", frames=1000, dropped=400, live=True)
    send(supervisor, "render", frames=597, lost=3)
    send(supervisor, "classify", frames=593, gaps=4, frames_by_stream={"s": 593})
    summary = supervisor.summary()
    assert (summary["lost"], summary["dropped"]) == (7, 400)  # render lost + classify gaps; drops apart
    assert "drop 400" in supervisor.status_line(1.0) and "lost 7 " in supervisor.status_line(1.0)


def test_lost_on_an_ended_stream_counts_what_a_dead_classifier_held(supervisor: Supervisor) -> None:
    stage = supervisor._by_report_key[("classify", 0)]
    stage.carried_streams = {"s": 300}  # an earlier incarnation's last report: 300 frames classified
    send(supervisor, "render", frames=1000, lost=0)
    send(supervisor, "classify", frames=690, gaps=0, frames_by_stream={"s": 690}, stream_lengths={"s": 1000})
    assert supervisor.summary()["lost"] == 10
    stage.unreported = 4  # of which it handled 4 after that report (its tally)
    assert supervisor.summary()["lost"] == 6


def test_remote_pose_workers_are_shown_as_such(supervisor: Supervisor) -> None:
    send(supervisor, "pose", 0, frames=5, rate=10.0)
    send(supervisor, "capture", frames=9, workers={"local": 2, "remote": 1})
    assert " | pose 2+1 remote " in supervisor.status_line(1.0)
    assert supervisor.summary()["workers"] == {"local": 2, "remote": 1}
    send(supervisor, "capture", frames=9, workers={"local": 2, "remote": 0})
    assert " | pose x2 " in supervisor.status_line(1.0)


def test_a_source_error_is_said_once_per_reason(supervisor: Supervisor) -> None:
    lost = {"rtsp://cam/1": "connection refused"}
    for _ in range(3):
        send(supervisor, "capture", reconnecting=["rtsp://cam/1"], source_errors=lost)
    assert said(supervisor) == ["source rtsp://cam/1 lost: connection refused; reconnecting with back-off"]
    assert "RECONNECTING rtsp://cam/1" in supervisor.status_line(1.0)
    send(supervisor, "capture", reconnecting=["rtsp://cam/1"], source_errors={"rtsp://cam/1": "no route to host"})
    send(supervisor, "capture", reconnecting=[], source_errors={})
    send(supervisor, "capture", reconnecting=["rtsp://cam/1"], source_errors={"rtsp://cam/1": "no route to host"})
    assert said(supervisor)[1:] == ["source rtsp://cam/1 lost: no route to host; reconnecting with back-off"] * 2


def test_a_silent_stage_shows_no_rate(supervisor: Supervisor) -> None:
    send(supervisor, "render", frames=50, rate=30.0, queue=0)
    assert "| render  30.0 fps q 0" in supervisor.status_line(1.0)
    supervisor._by_report_key[("render", 0)].last_report = time.monotonic() - SILENT_S - 0.5
    assert "| render   0.0 fps HUNG q 0" in supervisor.status_line(1.0)
    assert supervisor.summary()["per_stage"]["render"]["rate"] == 0.0
    assert supervisor.summary()["per_stage"]["render"]["hung"] is True


def test_no_frames_at_all_names_the_source(supervisor: Supervisor) -> None:
    send(supervisor, "capture", frames=0, done=True)
    assert supervisor.why_no_labels() == (
        "the source synthetic: gave no frames (not a video, an empty file or folder, or a stream that never sent one): "
        "check that it plays, or point --source at another")


def test_a_restarted_recorded_capture_counts_each_frame_once(supervisor: Supervisor) -> None:
    """Each restart re-sends RESUME_MARGIN frames before the last reported position: counted once in all."""
    capture = supervisor._by_report_key[("capture", 0)]
    incarnations = [(100, 100), (80, 148)]  # (frames sent, next frame) of each killed incarnation
    for frames, position in incarnations:
        send(supervisor, "capture", frames=frames, position={"s": position})
        last = supervisor.reports.pop(("capture", 0))
        supervisor._carry(capture, last)
        supervisor._resume(capture, last)  # where the next one starts: position - RESUME_MARGIN
    assert capture.resumed_at == {"s": 148 - 32}
    send(supervisor, "capture", frames=200 - 116, position={}, ended=["s"])
    assert supervisor.summary()["per_stage"]["capture"]["frames"] == 200
