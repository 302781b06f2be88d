"""Schema-valid messages whose place-in-the-stream fields are wrong: counted as malformed, never a crash.

An end-of-stream whose `lost` was not an integer crashed classify; a forged `seq` on one made the
summary say `lost 267459`. Each field render and classify read from a frame, an end-of-stream or a
lost-frame notice (`prev`, `dropped`, `lost_frames`, `lost`, `index`) gets values of the wrong
type and out of range, sent to the stage running alone as a process (test_fuzz's harness).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from test_fuzz import _arr, _check, _message, fuzz_stage, model  # noqa: F401 - `model` is a fixture

COUNT = 3000
_NOT_INT = ["3", 1.5, None, [1], {"a": 1}, True]


def render_messages(rng: np.random.Generator) -> Iterator[list[bytes]]:
    kp = lambda: _arr(rng, "keypoints", "float32", [1, 18, 3])  # noqa: E731
    boxes = lambda: _arr(rng, "boxes", "float32", [1, 4])  # noqa: E731
    frame = lambda **extra: _message(rng, [kp(), boxes()], size=[64, 48], **extra)  # noqa: E731
    big = 1 << 63
    cases = [
        *[lambda v=v: frame(prev=v) for v in _NOT_INT],
        lambda: frame(prev=-2), lambda: frame(prev=big),  # prev must lie in [-1, seq)
        *[lambda v=v: frame(dropped=v) for v in _NOT_INT], lambda: frame(dropped=-1),
        *[lambda v=v: _message(rng, [], eos=True, prev=v) for v in _NOT_INT],
        lambda: _message(rng, [], lost_frames="all"), lambda: _message(rng, [], lost_frames=[]),
        lambda: _message(rng, [], lost_frames=[[1]]), lambda: _message(rng, [], lost_frames=[[5, 5]]),
        lambda: _message(rng, [], lost_frames=[[5, -2]]), lambda: _message(rng, [], lost_frames=[[True, 0]]),
        lambda: _message(rng, [], lost_frames=[["5", 4]]), lambda: _message(rng, [], lost_frames=[[-1, -2]]),
        lambda: _message(rng, [], lost_frames=[[2, 1]] * 5000),
    ]
    while True:
        yield cases[int(rng.integers(len(cases)))]()


def classify_messages(rng: np.random.Generator) -> Iterator[list[bytes]]:
    kp = lambda: _arr(rng, "keypoints", "float32", [1, 18, 3])  # noqa: E731
    eos = lambda **extra: _message(rng, [], eos=True, **extra)  # noqa: E731
    cases = [
        *[lambda v=v: eos(lost=v) for v in ["3", None, [1], {"a": 1}]],
        lambda: eos(lost=-1), lambda: eos(lost=1 << 40),  # more lost than the stream had frames
        *[lambda v=v: eos(dropped=v) for v in ["3", None, [1], {"a": 1}]],
        lambda: eos(dropped=-1), lambda: eos(dropped=1 << 40), lambda: eos(dropped=2.5),
        *[lambda v=v: _message(rng, [kp()], tracks=[0], index=v) for v in ["3", None, [1], {"a": 1}]],
        lambda: _message(rng, [kp()], tracks=[0], index=-1), lambda: _message(rng, [kp()], tracks=[0], index=1 << 40),
    ]
    while True:
        yield cases[int(rng.integers(len(cases)))]()


def test_render_counts_bad_chain_fields_and_lives_on(model: Path) -> None:
    _check(fuzz_stage("render", model, render_messages(np.random.default_rng(1)), COUNT), "render", COUNT)


def test_classify_counts_bad_end_of_stream_fields_and_lives_on(model: Path) -> None:
    _check(fuzz_stage("classify", model, classify_messages(np.random.default_rng(2)), COUNT), "classify", COUNT)
