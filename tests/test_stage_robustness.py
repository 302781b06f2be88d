"""A stage's input socket is open to anything: malformed and oversized messages are counted and
dropped, and the stage keeps working."""
from __future__ import annotations

import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from engine.framework import transport
from engine.framework.schema import SCHEMA_VERSION
from engine.sources.synthetic import ACTIONS
from pipeline_helpers import render_process
from tiny_models import build_tiny_model


def _header(**extra: object) -> dict:
    return {"v": SCHEMA_VERSION, "stream": "s", "seq": 0, "t_capture_ns": 1, "arrays": [], **extra}


def malformed_messages() -> list[list[bytes]]:
    kp = np.zeros((1, 18, 3), np.float32).tobytes()
    good_arrays = [{"name": "keypoints", "dtype": "float32", "shape": [1, 18, 3]}, {"name": "boxes", "dtype": "float32", "shape": [1, 4]}]
    return [
        [b""],
        [b"\xff\xfe not msgpack"],
        [msgpack.packb(_header())[:-3]],  # truncated
        [msgpack.packb([1, 2, 3])],  # not a map
        [msgpack.packb({**_header(), "v": 99})],  # unknown version
        [msgpack.packb({**_header(), "seq": "zero"})],  # wrong type
        [msgpack.packb({**_header(), "seq": -5})],
        [msgpack.packb({"stream": "s"})],  # missing keys
        [msgpack.packb(_header(arrays=good_arrays)), kp],  # missing a frame
        [msgpack.packb(_header(arrays=[{"name": "keypoints", "dtype": "float32", "shape": [1, 18, 4]}])), kp],  # shape/bytes mismatch
        [msgpack.packb(_header(arrays=[{"name": "k", "dtype": "float32", "shape": [1 << 40, 1 << 40]}])), kp],  # huge declared size
        [msgpack.packb(_header(arrays=[{"name": "k", "dtype": "object", "shape": [1]}])), b"x" * 8],  # forbidden dtype
        [b"\x00" * (128 * 1024)],  # oversized header
        [msgpack.packb(_header(arrays=[{"name": "keypoints", "dtype": "uint8", "shape": [65 << 20]}])), bytes(65 << 20)],  # oversized array
        [msgpack.packb(_header(arrays=good_arrays[:1])), kp],  # keypoints without boxes: schema-valid, stage-invalid
    ]


@pytest.fixture()
def render_stage(tmp_path: Path):
    model = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", list(ACTIONS), window=1, stride=1)
    with render_process(model) as parts:
        yield parts


def test_malformed_messages_are_counted_and_dropped(render_stage) -> None:
    proc, push, out, status = render_stage
    bad = malformed_messages()
    for parts in bad:
        push.send_multipart(parts)
    kp = np.zeros((1, 18, 3), np.float32)
    kp[0, :, 2] = 1
    kp[0, :, :2] = np.random.default_rng(0).uniform(100, 300, (18, 2))
    transport.send(push, {"stream": "s", "seq": 0, "t_capture_ns": 1, "fps": 30.0, "size": [640, 480]},
                   {"keypoints": kp, "boxes": np.array([[100, 100, 300, 300]], np.float32)})
    assert out.poll(15000), "the stage stopped answering after malformed input"
    msg = transport.recv(out)
    assert msg.seq == 0 and msg.header["tracks"] == [0]
    np.testing.assert_array_equal(msg.arrays["keypoints"], kp)
    deadline = time.monotonic() + 5
    malformed = -1
    while time.monotonic() < deadline and malformed != len(bad):
        if status.poll(200):
            malformed = msgpack.unpackb(status.recv())["malformed"]
    assert malformed == len(bad)
    assert proc.poll() is None
