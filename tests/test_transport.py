from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq

from engine.framework import transport
from engine.framework.schema import SCHEMA_VERSION, Limits


@pytest.fixture()
def pair():
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://transport-test")
    b.connect("inproc://transport-test")
    yield a, b
    a.close(linger=0)
    b.close(linger=0)


def test_round_trip_keeps_header_and_arrays(pair) -> None:
    a, b = pair
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    kp = np.random.default_rng(1).random((2, 18, 3), dtype=np.float32)
    transport.send(a, {"stream": "cam", "seq": 7, "t_capture_ns": 123, "fps": 30.0}, {"frame": frame, "kp": kp[:, ::2]})
    msg = transport.recv(b)
    assert msg.header["v"] == SCHEMA_VERSION and msg.stream == "cam" and msg.seq == 7 and msg.header["fps"] == 30.0
    np.testing.assert_array_equal(msg.arrays["frame"], frame)
    np.testing.assert_array_equal(msg.arrays["kp"], kp[:, ::2])  # non-contiguous input is sent correctly
    assert not msg.arrays["frame"].flags.owndata  # a view on the received buffer, not a copy


def test_limits_refuse_oversized_arrays() -> None:
    header = msgpack.packb({"v": SCHEMA_VERSION, "stream": "s", "seq": 0, "t_capture_ns": 0,
                            "arrays": [{"name": "a", "dtype": "uint8", "shape": [2048]}]})
    with pytest.raises(transport.MalformedMessage, match="array .a.: "):
        transport.decode([header, bytes(2048)], Limits(max_array_bytes=1024))
    assert transport.decode([header, bytes(2048)]).arrays["a"].shape == (2048,)
