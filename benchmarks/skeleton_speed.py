"""Skeleton images per second on one core (goal: at least 2,000 64x64 images/s).

    PYTHONPATH=. .venv/bin/python benchmarks/skeleton_speed.py [--seconds 2]

Measures one person per call (the render stage's usual case), a batch of people per call,
and the 64/32/16/8 pyramid drawn once and shrunk (what pose.skeleton does) against drawing
every level directly (the baseline it was chosen over), in the same run.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np

from pose import skeleton

# A standing person, arms a little out, in a 640x480 frame (COCO-18 order).
_STANDING = np.array([
    [320, 100], [320, 140], [290, 140], [275, 190], [265, 235], [350, 140], [365, 190], [375, 235],
    [300, 240], [298, 310], [296, 380], [340, 240], [342, 310], [344, 380],
    [312, 92], [328, 92], [304, 96], [336, 96],
], np.float32)


def people(n: int, seed: int = 0) -> np.ndarray:
    """float32[n, 18, 3]: jittered, shifted copies of a standing person, a few joints missing."""
    rng = np.random.default_rng(seed)
    kp = np.zeros((n, 18, 3), np.float32)
    kp[..., :2] = _STANDING + rng.normal(0, 6, (n, 18, 2)) + rng.uniform(-150, 150, (n, 1, 2))
    kp[..., 2] = (rng.random((n, 18)) > 0.1).astype(np.float32)
    return kp


def rate(fn: Callable[[], object], images_per_call: int, seconds: float) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return calls * images_per_call / elapsed


def _pyramid_direct(kp: np.ndarray) -> list[np.ndarray]:
    return [skeleton.skeleton_images(kp, s) for s in (64, 32, 16, 8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    one, batch = people(1), people(32)
    rows = [
        ("64x64, 1 person per call", rate(lambda: skeleton.skeleton_images(one, 64), 1, args.seconds), "images/s"),
        ("64x64, 32 people per call", rate(lambda: skeleton.skeleton_images(batch, 64), 32, args.seconds), "images/s"),
        ("pyramid 64/32/16/8, draw once + resize (kept)",
         rate(lambda: skeleton.skeleton_pyramid(one), 1, args.seconds), "people/s"),
        ("pyramid 64/32/16/8, draw every level (baseline)",
         rate(lambda: _pyramid_direct(one), 1, args.seconds), "people/s"),
    ]
    for name, value, unit in rows:
        print(f"{name:50s} {value:10.0f} {unit}")


if __name__ == "__main__":
    main()
