"""Bad model files are refused with one line naming the problem, before any stage starts.

Each file goes through both doors a user has: `engine run --model X` (exit code 3, one
stderr line, no stage process and no run directory created) and
`engine.classify.contract.load_contract` (a ModelError of one line naming the file).
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from engine.errors import ModelError
from engine.classify.contract import load_contract
from engine.sources.synthetic import ACTIONS
from pipeline_helpers import REPO, engine_cmd, free_port, synthetic_frames
from tiny_models import build_tiny_model

LABELS = list(ACTIONS)


def random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(3).bytes(64 * 1024))
    return path


def png_named_onnx(path: Path) -> Path:
    frames, _ = synthetic_frames(1)
    ok, png = cv2.imencode(".png", frames[0])
    assert ok
    path.write_bytes(png.tobytes())
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def truncated_onnx(path: Path) -> Path:
    whole = build_tiny_model(path.with_name("whole.onnx"), "keypoint_sequence", LABELS).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def onnx_without_metadata(path: Path) -> Path:
    model = onnx.load(str(build_tiny_model(path, "keypoint_sequence", LABELS)))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    return path


def sparse_2gb(path: Path) -> Path:
    with open(path, "wb") as f:
        f.write(b"\x08\x08")  # an ONNX-looking first byte; the rest is a hole, no disk used
    os.truncate(path, 2 * 1024**3)
    return path


# name -> (build the file under tmp, words the one-line refusal must hold)
CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "random_bytes": (random_bytes, ("not an ONNX model",)),
    "png": (png_named_onnx, ("not an ONNX model",)),
    "empty": (empty_file, ("not an ONNX model",)),
    "truncated_onnx": (truncated_onnx, ("not an ONNX model",)),
    "no_metadata": (onnx_without_metadata, ("'labels'", "missing")),
    "missing_window": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, omit=("window",)), ("'window'", "missing")),
    "missing_metrics": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, omit=("metrics",)), ("'metrics'", "missing")),
    "labels_not_json": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"labels": "a,b,c"}), ("'labels'",)),
    "labels_a_map": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"labels": {"0": "a"}}), ("'labels'",)),
    "labels_numbers": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"labels": [1, 2]}), ("'labels'",)),
    "window_text": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"window": "eight"}), ("'window'", "integer")),
    "window_float": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"window": "8.5"}), ("'window'", "integer")),
    "stride_zero": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, stride=0), ("'stride'",)),
    "fps_text": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, fps="fast"), ("'fps'",)),
    "fps_nan": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, fps="nan"), ("'fps'",)),
    "metrics_list": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metrics=[1, 2]), ("'metrics'",)),
    "input_kind_unknown": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"input_kind": "video"}), ("'input_kind'",)),
    "window_vs_graph": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, window=8, graph_window=12), ("shape", "window 8")),
    "image_size_vs_graph": (lambda p: build_tiny_model(p, "skeleton_image", LABELS, image_size=32, graph_image_size=16), ("shape", "image_size 32")),
    "labels_vs_output": (lambda p: build_tiny_model(p, "keypoint_sequence", LABELS, metadata={"labels": LABELS[:3]}), ("'labels'", "3 classes")),
    "two_gb": (sparse_2gb, ("GiB", "limit")),
}


def _one_line_refusal(path: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_contract(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_contract_refuses(tmp_path: Path, case: str) -> None:
    build, words = CASES[case]
    path = build(tmp_path / f"{case}.onnx")
    message = _one_line_refusal(path)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_run_refuses_before_any_stage(tmp_path: Path, case: str) -> None:
    build, words = CASES[case]
    path = build(tmp_path / f"{case}.onnx")
    run_tmp = tmp_path / "tmp"  # the supervisor makes its run directory here once checks pass
    run_tmp.mkdir()
    # --duration bounds a run that failed to refuse: it would end with code 0, not 3.
    result = subprocess.run(
        engine_cmd("run", "--model", str(path), "--source", "synthetic:", "--publish", f"tcp://127.0.0.1:{free_port()}",
                   "--duration", "10", "--quiet"),
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "TMPDIR": str(run_tmp)},
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert not list(run_tmp.glob("engine-run-*")), "a run directory was made: stages started before the model was checked"


def _bytes_read_refusing(path: Path) -> tuple[str, int]:
    """The refusal of `path` and how many bytes this process read meanwhile (/proc/self/io)."""
    io = Path("/proc/self/io")
    read_before = int(io.read_text().split("rchar:")[1].split()[0])
    message = _one_line_refusal(path)
    return message, int(io.read_text().split("rchar:")[1].split()[0]) - read_before


def test_two_gb_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = sparse_2gb(tmp_path / "huge.onnx")
    message, read = _bytes_read_refusing(path)
    assert message == f"{path}: 2.0 GiB is over the 1 GiB limit for a classifier; check that this is the right file"
    assert read < 1 << 20, f"{read} bytes read to refuse a 2 GB file"


def test_device_file_is_refused_without_reading(tmp_path: Path) -> None:
    """/dev/zero never ends: reading it would hang the engine; it is not a regular file."""
    message, read = _bytes_read_refusing(Path("/dev/zero"))
    assert message == "model path is not a file: /dev/zero; pass the path of a classifier .onnx file"
    assert read < 1 << 20, f"{read} bytes read from /dev/zero"
