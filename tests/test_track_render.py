"""The render stage gives the ids: frames that arrive out of order from pose workers, with the
people's torso colours (what a pose worker sends) or with the frame itself (forwarded for a
viewer), get the same stable ids; colours that are not histograms are counted and dropped."""
from __future__ import annotations

import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from engine.framework import transport
from engine.sources.synthetic import ACTIONS
from pipeline_helpers import render_process
from pose.base import boxes_from_keypoints
from pose.tracking import appearance_descriptors
from test_track_crossing import BEIGE, BLUE, DARK, H, RED, W, Walker, behind_a_pillar, scene
from tiny_models import build_tiny_model

FRAMES = 40


@pytest.fixture()
def render(tmp_path: Path):
    model = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", list(ACTIONS), window=4, stride=2)
    with render_process(model) as parts:
        yield parts


def pose_message(stream: str, seq: int, image: np.ndarray, kp: np.ndarray, colours: str) -> tuple[dict, dict]:
    header = {"stream": stream, "seq": seq, "prev": seq - 1, "t_capture_ns": 1 + seq, "fps": 30.0, "size": [W, H]}
    arrays = {"keypoints": kp, "boxes": boxes_from_keypoints(kp)}
    if colours == "appearance":
        arrays["appearance"] = appearance_descriptors(image, kp)
    elif colours == "frame":
        arrays["frame"] = image
    return header, arrays


def test_render_keeps_ids_through_the_pillar_from_colours_or_frames(render) -> None:
    proc, push, out, status = render
    walkers = [Walker(RED, DARK, 1.0, lambda t: behind_a_pillar(t, 120, 10, 250, True)),
               Walker(BLUE, BEIGE, 1.0, lambda t: behind_a_pillar(t, 520, -10, 250, True))]
    frames = scene(walkers, FRAMES, seed=1, pillars=((270, 0, 370, H),))
    # Not a histogram: counted as malformed, the stage goes on.
    header, arrays = pose_message("bad", 0, *frames[0][::2], "appearance")
    transport.send(push, header, {**arrays, "appearance": -arrays["appearance"]})
    # Two pose workers' outputs interleave: every pair of frames arrives swapped.
    order = [seq ^ 1 for seq in range(FRAMES)]
    for seq in order:
        image, _, kp = frames[seq]
        for stream in ("appearance", "frame"):
            transport.send(push, *pose_message(stream, seq, image, kp, stream))
    got: dict[str, dict[int, list[int]]] = {"appearance": {}, "frame": {}}
    deadline = time.monotonic() + 30
    while sum(map(len, got.values())) < 2 * FRAMES and time.monotonic() < deadline:
        if out.poll(500):
            msg = transport.recv(out)
            got[msg.stream][msg.seq] = msg.header["tracks"]
    assert got["appearance"] == got["frame"]
    assert sorted(got["frame"]) == list(range(FRAMES))
    per_walker: dict[int, set[int]] = {0: set(), 1: set()}
    for seq, (_, found, _) in enumerate(frames):
        for walker, track in zip(found, got["frame"][seq]):
            per_walker[walker].add(track)
    assert per_walker[0] == {0} and per_walker[1] == {1}
    deadline = time.monotonic() + 5
    malformed = -1
    while time.monotonic() < deadline and malformed != 1:
        if status.poll(200):
            malformed = msgpack.unpackb(status.recv())["malformed"]
    assert malformed == 1
    assert proc.poll() is None
