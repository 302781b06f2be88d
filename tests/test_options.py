"""One dataclass per stage's options: the stage parses exactly what the supervisor writes, one flag per meaning."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import msgpack
import pytest

from engine.classify.runtime import ClassifyOptions
from engine.framework.config import RunOptions, build_options
from engine.framework.endpoints import connectable, free_port, is_loopback, is_loopback_host
from engine.framework.options import flagged_fields, parse_options, to_argv
from engine.framework.schema import LABEL_FIELDS, LABELS_TOPIC, BadLabel, decode_label, encode_label, format_label
from engine.framework.stage_options import (
    CaptureOptions, ClassifyStageOptions, PoseStageOptions, RenderOptions, SinkOptions, ViewStageOptions,
)
from engine.framework.supervisor import Supervisor
from engine.paths import write_atomically

STAGE_OPTIONS = [
    CaptureOptions(source=("synthetic:", "mhad:S08"), output="ipc:///tmp/x/frames", realtime=True,
                   resume='{"ended": [], "next": {}}', status="ipc:///tmp/x/status", worker=0),
    PoseStageOptions(input="tcp://127.0.0.1:1", output="tcp://127.0.0.1:2", pose="replay", pose_threads=3,
                     replay_file="k.npz", forward_frames=True, worker=2, curve_keys="keys", debug=True),
    RenderOptions(input="a", output="b", model="m.onnx", reorder_capacity=96, reorder_timeout=0.25, monitor="c"),
    ClassifyStageOptions(input="a", publish="tcp://*:5560", model="m.onnx",
                         classify=ClassifyOptions(threads=2, ema=0.0, unknown_below=0.4, min_window_s=0.5)),
    SinkOptions(labels="a", monitor="b", lossless=True, record="out.mp4", max_backlog_mb=64.0),
    ViewStageOptions(labels="a", bind="0.0.0.0:8081", pose="blazepose", model="m.onnx", max_fps=5.0),
]


@pytest.mark.parametrize("options", STAGE_OPTIONS, ids=lambda o: type(o).__name__)
def test_a_stage_parses_back_what_the_supervisor_writes(options: object) -> None:
    assert parse_options(type(options), to_argv(options), "stage") == options


def test_defaults_stay_off_the_command_line() -> None:
    assert to_argv(RenderOptions(input="a", output="b", model="m")) == ["--input", "a", "--output", "b", "--model", "m",
                                                                        "--worker", "0"]


def test_one_flag_per_meaning_across_run_and_every_stage() -> None:
    """An option has one flag name on every command: `engine run`, `engine pose`, `engine view` and each stage."""
    from engine.framework.commands.pose import PoseCommandOptions
    from engine.framework.commands.view import ViewCommandOptions

    flags_by_field: dict[str, set[str]] = {}
    for cls in (RunOptions, CaptureOptions, PoseStageOptions, RenderOptions, ClassifyStageOptions, SinkOptions,
                ViewStageOptions, PoseCommandOptions, ViewCommandOptions):
        for _, f in flagged_fields(cls):
            flags_by_field.setdefault(f.name.removesuffix("_s"), set()).add(f.metadata["flag"])
    assert {name: flags for name, flags in flags_by_field.items() if len(flags) > 1} == {}
    assert flags_by_field["pose_threads"] == {"--pose-threads"} and flags_by_field["pose"] == {"--pose"}


def test_run_options_take_the_stage_defaults() -> None:
    run, classify = RunOptions(), ClassifyOptions()
    assert (run.ema, run.unknown_below, run.min_window, run.classify_threads) == (
        classify.ema, classify.unknown_below, classify.min_window_s, classify.threads)
    assert run.reorder_timeout == RenderOptions.__dataclass_fields__["reorder_timeout"].default


def test_the_supervisor_plans_stages_from_run_options(tmp_path: Path) -> None:
    supervisor = Supervisor(build_options(None, {"pose_workers": 2, "ema": 0.25, "labels_out": str(tmp_path / "l.jsonl"),
                                                 "publish": "tcp://0.0.0.0:5999"}))
    supervisor.run_dir = tmp_path
    supervisor._plan("replay")
    plan = {stage.key: stage for stage in supervisor.stages}
    assert sorted(plan) == ["capture", "classify", "pose.0", "pose.1", "render", "sink"]
    classify = parse_options(ClassifyStageOptions, to_argv(plan["classify"].options), "classify")
    assert classify.classify.ema == 0.25 and classify.publish == "tcp://0.0.0.0:5999"
    assert parse_options(SinkOptions, to_argv(plan["sink"].options), "sink").labels == "tcp://127.0.0.1:5999"
    assert [s.options.worker for k, s in plan.items() if k.startswith("pose.")] == [0, 1]


def test_unknown_below_from_a_config_file_may_be_a_number(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("unknown-below = 0.4\n")
    assert build_options(str(config), {}).unknown_below == 0.4


def label_fields(**changes: object) -> dict:
    return {"stream": "s", "track": 1, "seq_from": 0, "seq_to": 7, "t_capture_ns": 5, "label": "waving",
            "score": 0.75, "topk": [["waving", 0.75]], "model": "m", **changes}


def test_the_label_codec_round_trips_every_public_field() -> None:
    parts = encode_label(label_fields(), t_publish_ns=9)
    assert parts[0] == LABELS_TOPIC
    label = decode_label(parts)
    assert tuple(label) == LABEL_FIELDS and label["t_publish_ns"] == 9 and label["score"] == 0.75
    assert format_label(label) == "s track 1 frames 0-7: waving (0.75)"


def test_the_label_codec_refuses_what_is_not_a_label() -> None:
    for parts in ([LABELS_TOPIC], [b"other", msgpack.packb(label_fields())], [LABELS_TOPIC, msgpack.packb({"label": "a"})]):
        with pytest.raises(BadLabel):
            decode_label(parts)


@pytest.mark.parametrize("endpoint, loopback", [
    ("ipc:///tmp/x", True), ("tcp://127.0.0.1:1", True), ("tcp://localhost:1", True), ("tcp://[::1]:1", True),
    ("tcp://*:1", False), ("tcp://0.0.0.0:1", False), ("tcp://10.0.0.2:1", False), ("tcp://eth0:1", False),
])
def test_loopback_endpoints(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_wildcard_binds_are_reached_on_loopback() -> None:
    assert connectable("tcp://*:5560") == "tcp://127.0.0.1:5560"
    assert connectable("tcp://0.0.0.0:5561") == "tcp://127.0.0.1:5561"
    assert connectable("tcp://10.0.0.2:5560") == "tcp://10.0.0.2:5560"
    assert is_loopback_host("127.0.0.1") and not is_loopback_host("0.0.0.0")
    assert 0 < free_port() < 65536


def test_write_atomically_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_atomically(target, lambda tmp: Path(tmp).write_text("one"))
    assert target.read_text() == "one" and oct(target.stat().st_mode & 0o777) == oct(0o644)

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, fail)
    assert target.read_text() == "one" and sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_run_flags_users_know_are_kept() -> None:
    flags = {f.metadata["flag"] for _, f in flagged_fields(RunOptions)}
    assert {"--source", "--pose", "--pose-weights", "--pose-workers", "--max-people", "--replay-file", "--model",
            "--publish", "--ema", "--unknown-below", "--min-window", "--view", "--record", "--labels-out",
            "--keypoints-out", "--monitor", "--curve-keys", "--no-print-labels"} <= flags
    assert {f.name for f in dataclasses.fields(RunOptions)} - {"debug"} == {
        f.name for _, f in flagged_fields(RunOptions)}
