"""How fast is the blazepose backend on one core, against its own landmark model alone?

    python benchmarks/pose_speed.py [--source PATH] [--frames N] [--people K] [--json PATH]

Pins the process to one CPU and uses one onnxruntime thread. Measures, in the same run:
the whole backend per frame in tracking mode (the person detector only when due), the
bare landmark model call on a 256x256 crop, the person detector call (one image, and the
frame with a tile in one batch), and the landmarks of each frame's tracked people in one
batched call against one call each (interleaved). The goal is a backend within 1.3x of the
bare landmark model per person. MediaPipe's own pose solution is timed too when the
`mediapipe` package is importable (it is not a dependency of the engine).
The default source is vtest.avi (pedestrians, 768x576) from tests/media.py.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pose.base import PoseOptions  # noqa: E402
from pose import blazepose  # noqa: E402
from pose.blazepose import BlazePoseBackend  # noqa: E402
from pose.roi import Roi, warp_crop  # noqa: E402


class CountingBackend(BlazePoseBackend):
    detector_calls = 0

    def _detect_regions(self, images_bgr):
        self.detector_calls += 1
        return super()._detect_regions(images_bgr)


def read_frames(source: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(source))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"cannot read frames from {source}")
    return frames


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(ms), 3), "mean_ms": round(statistics.fmean(ms), 3),
            "p90_ms": round(float(np.percentile(ms, 90)), 3)}


def bench_backend(frames: list[np.ndarray], people: int) -> dict:
    batch_default = blazepose.BATCH_LANDMARKS
    backend = CountingBackend(PoseOptions(max_people=people, threads=1))
    for seq, frame in enumerate(frames[:5]):  # warm-up on another stream: first calls allocate
        backend.estimate(frame, "warmup", seq)
    backend.detector_calls = 0
    lmk_name = backend.landmarker.get_inputs()[0].name
    det_session = backend.detector.session
    det_name = det_session.get_inputs()[0].name
    # Interleaved, so that both see the same load on a shared machine: each frame through
    # the whole backend, then the bare landmark model on that frame's crop.
    per_frame, landmark, found, tracking_only, people_seen = [], [], 0, [], []
    batched, one_each = [], []
    for seq, frame in enumerate(frames):
        calls = backend.detector_calls
        t0 = time.perf_counter()
        result = backend.estimate(frame, "bench", seq)
        per_frame.append((time.perf_counter() - t0) * 1000)
        tracking_only.append(backend.detector_calls == calls)
        found += len(result) > 0
        people_seen.append(len(result))
        tracked = backend.tracked("bench")
        if len(tracked) > 1:  # the same crops both ways, in turn
            rois = [r for _, r in tracked]
            for flag, out in ((True, batched), (False, one_each)):
                blazepose.BATCH_LANDMARKS = flag
                t0 = time.perf_counter()
                backend.landmarks_many(frame, rois)
                out.append((time.perf_counter() - t0) * 1000 / len(rois))
            blazepose.BATCH_LANDMARKS = batch_default
        roi = tracked[0][1] if tracked else Roi(frame.shape[1] / 2, frame.shape[0] / 2, min(frame.shape[:2]), 0.0)
        crop = cv2.cvtColor(warp_crop(frame, roi, 256), cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255
        t0 = time.perf_counter()
        backend.landmarker.run(None, {lmk_name: crop})
        landmark.append((time.perf_counter() - t0) * 1000)
    det_in = np.random.default_rng(1).random((2, 300, 300, 3), dtype=np.float32) * 2 - 1
    detector = timed(lambda: det_session.run(None, {det_name: det_in[:1]}), max(20, len(frames) // 4))
    detector2 = timed(lambda: det_session.run(None, {det_name: det_in}), max(20, len(frames) // 4))
    result = {
        "backend_per_frame": summary(per_frame),
        "backend_tracking_frames": summary([t for t, only in zip(per_frame, tracking_only) if only] or [0.0]),
        "tracking_frames": sum(tracking_only),
        "landmark_model": summary(landmark),
        "detector_model": summary(detector),
        "detector_model_batch_of_2": summary(detector2),
        "people_per_frame_mean": round(statistics.fmean(people_seen), 2),
        "landmarks_per_person_batched": summary(batched or [0.0]),
        "landmarks_per_person_one_call_each": summary(one_each or [0.0]),
        "batched_frames": len(batched),
        "frames": len(frames),
        "frames_with_person": found,
        "detector_calls": backend.detector_calls,
        "fps": round(1000 / statistics.fmean(per_frame), 1),
        "ratio_backend_to_landmark_median": round(statistics.median(per_frame) / statistics.median(landmark), 3),
        "ratio_backend_to_landmark_mean": round(statistics.fmean(per_frame) / statistics.fmean(landmark), 3),
        "ratio_tracking_frames_to_landmark_median": round(
            statistics.median([t for t, only in zip(per_frame, tracking_only) if only] or [0.0])
            / statistics.median(landmark), 3),
    }
    backend.close()
    return result


def bench_mediapipe(frames: list[np.ndarray]) -> dict | None:
    try:
        import mediapipe as mp  # optional: only to compare with what users would otherwise run
    except ImportError:
        return None
    per_frame, found = [], 0
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True) as pose:
        for frame in frames:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            t0 = time.perf_counter()
            res = pose.process(rgb)
            per_frame.append((time.perf_counter() - t0) * 1000)
            found += res.pose_landmarks is not None
    return {"per_frame": summary(per_frame), "frames_with_person": found,
            "fps": round(1000 / statistics.fmean(per_frame), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--source", type=Path, help="a video file (default: vtest.avi from tests/media.py)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--people", type=int, default=1, help="max_people (K)")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the first allowed)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)

    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    source = args.source
    if source is None:
        sys.path.insert(0, str(REPO / "tests"))
        from media import media_path

        source = media_path("vtest.avi")
    frames = read_frames(source, args.frames)
    report = {
        "source": str(source), "size": list(frames[0].shape[1::-1]), "people": args.people, "cpu": cpu,
        "machine": platform.processor() or platform.machine(),
        "blazepose": bench_backend(frames, args.people),
        "mediapipe": bench_mediapipe(frames),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
