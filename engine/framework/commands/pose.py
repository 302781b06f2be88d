"""`engine pose SOURCE`: keypoints of the people in an image or a video, printed and drawn.

One process, no stages: the chosen pose backend and a tracker per stream, frame after frame.
Any source string works (engine.sources); a single image file gives one result, everything
else one result per frame.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import ConfigError, SourceError
from engine.framework.media import VIDEO_CODECS, open_video_writer
from engine.framework.options import add_options, same_as
from engine.framework.stage_options import CaptureOptions, PoseStageOptions
from engine.sources import IMAGE_SUFFIXES, open_streams, parse_source
from engine.sources.spec import default_max_people
from pose.coco import N_JOINTS


@dataclass(frozen=True)
class PoseCommandOptions:
    """The backend options `engine pose` shares with `engine run` and the pose stage: same flags, same defaults."""

    pose: str = same_as(PoseStageOptions, "pose", metadata={"aliases": ("--backend",)})
    max_people: int = same_as(PoseStageOptions, "max_people")
    pose_weights: str | None = same_as(PoseStageOptions, "pose_weights")
    replay_file: str | None = same_as(PoseStageOptions, "replay_file")
    pose_threads: int = same_as(PoseStageOptions, "pose_threads", metadata={"aliases": ("--threads",)})
    mhad_root: str | None = same_as(CaptureOptions, "mhad_root")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pose",
        help="print (and draw) the keypoints of the people in an image or video",
        description="Run a pose backend on an image, video or any other source and print COCO-18 keypoints per person.",
    )
    p.add_argument("source", metavar="IMAGE_OR_VIDEO", help="an image or video file (or any source string: folder, synthetic:, mhad:...)")
    add_options(p, PoseCommandOptions)
    p.add_argument("--input-height", type=int, default=368, help="network input height for openpose (default 368)")
    p.add_argument("--json", action="store_true", help="print JSON: one object for an image, one line per frame for a video")
    p.add_argument("--out", default=None, metavar="FILE", help="write the annotated image (.png/.jpg) or video (.mp4/.avi)")
    p.add_argument("--keypoints-out", default=None, metavar="FILE", help="also write the keypoints to FILE (.npz or .jsonl)")
    p.add_argument("--frames", type=int, default=None, metavar="N", help="stop after N frames")


def _check(args: argparse.Namespace, single_image: bool) -> None:
    if args.max_people < 0:
        raise ConfigError(f"--max-people must be at least 1 (or 0 for the source's default), got {args.max_people}")
    if args.pose_threads < 1:
        raise ConfigError(f"--pose-threads must be at least 1, got {args.pose_threads}")
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    if args.out:
        suffix = Path(args.out).suffix.lower()
        wanted = IMAGE_SUFFIXES if single_image else set(VIDEO_CODECS)
        if suffix not in wanted:
            kind = "an image" if single_image else "a video"
            raise ConfigError(f"--out {args.out}: for {kind} name it {' or '.join(sorted(wanted))}")
        if not Path(args.out).expanduser().resolve().parent.is_dir():
            raise ConfigError(f"--out {args.out}: folder {Path(args.out).parent} does not exist")


def _backend(args: argparse.Namespace) -> Any:
    from pose import BACKENDS, PoseError, PoseOptions, create_backend

    options = PoseOptions(
        backend=args.pose, max_people=args.max_people, threads=args.pose_threads,
        weights_dir=args.pose_weights, input_height=args.input_height, replay_file=args.replay_file,
    )
    try:
        return create_backend(options)
    except ModuleNotFoundError as exc:
        module = BACKENDS.get(args.pose, "").split(":")[0]
        if exc.name != module:
            raise
        raise PoseError(f"pose backend {args.pose!r} is not part of this install ({module} missing)") from None


def _record(people: Any) -> list[dict[str, Any]]:
    out = []
    for kp, box, track in zip(people.keypoints, people.boxes, people.tracks):
        out.append({
            "track": int(track),
            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(c), 4)] for x, y, c in kp],
            "box": [round(float(v), 2) for v in box],
        })
    return out


def _summary_line(name: str, people: Any, backend: str, size: tuple[int, int]) -> str:
    lines = [f"{name}: {len(people)} {'person' if len(people) == 1 else 'people'} ({backend}, {size[0]}x{size[1]})"]
    for kp, box, track in zip(people.keypoints, people.boxes, people.tracks):
        seen = kp[:, 2] > 0
        confidence = float(kp[seen, 2].mean()) if seen.any() else 0.0
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        lines.append(f"  #{int(track)}: {int(seen.sum())}/{N_JOINTS} joints, mean confidence {confidence:.2f}, box ({x0},{y0})-({x1},{y1})")
    return "\n".join(lines)


class _VideoOut:
    """The annotated video, opened on the first frame (its size and the source's rate)."""

    def __init__(self, path: str, fps: float) -> None:
        self.path, self.fps, self.writer, self.size = path, fps, None, None

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            self.writer = open_video_writer(self.path, self.fps, self.size)
            if self.writer is None:
                raise ConfigError(f"--out {self.path}: OpenCV cannot write this video here; try .avi")
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def run(args: argparse.Namespace) -> int:
    from pose.draw import BoxAnnotator, SkeletonAnnotator, annotate_all
    from pose.keypoints_file import KeypointsWriter
    from pose.tracking import Tracker

    spec = parse_source(args.source, args.mhad_root)
    single_image = spec.kind == "images" and Path(spec.location).is_file()
    _check(args, single_image)
    args.max_people = args.max_people or default_max_people([spec])  # 0: by source kind
    backend = _backend(args)
    annotators = [SkeletonAnnotator(), BoxAnnotator()]
    keypoints_out = KeypointsWriter(args.keypoints_out) if args.keypoints_out else None
    video_out: _VideoOut | None = None
    frames, tracks_seen, people_total, start = 0, set(), 0, time.perf_counter()
    try:
        for reader in open_streams(spec):
            tracker = Tracker()
            try:
                while args.frames is None or frames < args.frames:
                    frame = reader.read()
                    if frame is None:
                        break
                    h, w = frame.image.shape[:2]
                    people = backend.estimate(frame.image, frame.stream, frame.seq, frame.keypoints)
                    people = tracker.update(people, (w, h))
                    frames += 1
                    people_total += len(people)
                    tracks_seen.update(int(t) for t in people.tracks if t >= 0)
                    if keypoints_out is not None:
                        keypoints_out.write(frame.stream, frame.seq, people)
                    if args.json:
                        record: dict[str, Any] = {"people": _record(people), "backend": backend.name, "size": [w, h]}
                        if not single_image:
                            record = {"stream": frame.stream, "seq": frame.seq, **record}
                        print(json.dumps(record, separators=(",", ":")), flush=not single_image)
                    elif single_image:
                        print(_summary_line(Path(spec.location).name, people, backend.name, (w, h)))
                    if args.out:
                        drawn = annotate_all(frame.image.copy(), people, annotators)
                        if single_image:
                            if not cv2.imwrite(str(Path(args.out).expanduser()), drawn):
                                raise ConfigError(f"--out {args.out}: OpenCV cannot write this image")
                        else:
                            if video_out is None:
                                video_out = _VideoOut(str(Path(args.out).expanduser()), reader.fps)
                            video_out.write(drawn)
            finally:
                reader.close()
            if args.frames is not None and frames >= args.frames:
                break
    finally:
        backend.close()
        if video_out is not None:
            video_out.close()
        if keypoints_out is not None:
            keypoints_out.close()
    if frames == 0:
        raise SourceError(f"source {args.source} yielded no frame: the media is empty or unreadable")
    if not args.json and not single_image:
        elapsed = time.perf_counter() - start
        print(
            f"{args.source}: {frames} frames, {people_total / frames:.2f} people per frame, "
            f"{len(tracks_seen)} tracks ({backend.name}, {frames / elapsed:.1f} frames/s)",
            file=sys.stdout,
        )
    if args.out and not args.json:
        print(f"wrote {args.out}")
    return 0
