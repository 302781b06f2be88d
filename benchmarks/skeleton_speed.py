"""Skeleton images per second on one core (goal: at least 2,000 64x64 images/s), and what the
tracker adds per frame in the render stage.

    PYTHONPATH=. .venv/bin/python benchmarks/skeleton_speed.py [--seconds 2] [--part all|skeleton|tracker]

Skeletons: one person per call (the render stage's usual case), a batch of people per call,
and the 64/32/16/8 pyramid drawn once and shrunk (what pose.skeleton does) against drawing
every level directly (the baseline it was chosen over), in the same run.

Tracker: microseconds per frame of `Tracker.update` with 1, 4 and 8 people walking across a
768x576 frame (vtest.avi's size), by motion alone (the baseline: keypoints only) and with the
torso colours, plus `appearance_descriptors` (run by the pose worker on the frame) per person.
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


def walking_scene(n: int, frames: int = 64, size: tuple[int, int] = (768, 576)) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, keypoints float32[n, 18, 3]) per frame: n people in coloured shirts walking across a noisy floor."""
    rng = np.random.default_rng(n)
    w, h = size
    start = rng.uniform([60, 150], [w - 60, h - 60], (n, 2))
    step = rng.uniform(-6, 6, (n, 2))
    shirts = rng.integers(0, 256, (n, 3))
    floor = rng.integers(90, 130, (h, w, 3), dtype=np.uint8)
    out = []
    for t in range(frames):
        image = floor.copy()
        kp = np.zeros((n, 18, 3), np.float32)
        for i in range(n):
            centre = (start[i] + step[i] * t) % [w - 120, h - 200] + [60, 150]
            kp[i, :, :2] = (_STANDING - _STANDING.mean(axis=0)) * 0.6 + centre + rng.normal(0, 1.5, (18, 2))
            kp[i, :, 2] = 1
            torso = kp[i, [2, 5, 11, 8], :2].astype(np.int32)
            cv2.fillConvexPoly(image, torso, tuple(int(c) for c in shirts[i]))
        out.append((image, kp))
    return out


def tracker_rows(seconds: float) -> list[tuple[str, float, str]]:
    """Microseconds per frame of the tracker with 1/4/8 people: motion only (baseline) and with colours."""
    from pose.base import People, boxes_from_keypoints
    from pose.tracking import Tracker, appearance_descriptors

    rows = []
    for n in (1, 4, 8):
        scene = walking_scene(n)
        colours = [appearance_descriptors(image, kp) for image, kp in scene]
        people = [People(kp, boxes_from_keypoints(kp)) for _, kp in scene]  # as render gets them: boxes given

        def frames_per_s(use_colours: bool) -> float:
            state = {"tracker": Tracker(), "t": 0}

            def one() -> None:
                t = state["t"] % len(scene)
                if t == 0:
                    state["tracker"] = Tracker()  # a fresh stream each loop: the scene jumps back
                state["tracker"].update(people[t], (768, 576), appearance=colours[t] if use_colours else None)
                state["t"] += 1
            return rate(one, 1, seconds)

        rows.append((f"tracker, {n} people, motion only (baseline)", 1e6 / frames_per_s(False), "us/frame"))
        rows.append((f"tracker, {n} people, motion + colours", 1e6 / frames_per_s(True), "us/frame"))
        state = {"t": 0}

        def describe() -> None:
            image, kp = scene[state["t"] % len(scene)]
            appearance_descriptors(image, kp)
            state["t"] += 1
        rows.append((f"torso colours (pose worker), {n} people", 1e6 / rate(describe, n, seconds), "us/person"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--part", choices=("all", "skeleton", "tracker"), default="all", help="what to measure")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if args.part == "tracker":
        for name, value, unit in tracker_rows(args.seconds):
            print(f"{name:50s} {value:10.1f} {unit}")
        return
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
    if args.part == "all":
        for name, value, unit in tracker_rows(args.seconds):
            print(f"{name:50s} {value:10.1f} {unit}")


if __name__ == "__main__":
    main()
