"""A crowd in view: K real people walking across a real, empty scene, rendered at a fixed rate.

The people are real footage, not drawings: the pedestrians of OpenCV's `vtest.avi` (Debian's
opencv-doc; tests/media.py fetches it into .cache/media), each followed for two seconds of the
clip so that their legs and arms really move. The background is the same scene with everybody
removed: the per-pixel median of frames spread over the clip (people walk on, the ground
stays). A pedestrian is cut out of its frame by its difference from that background.

Each person is scaled to a height BlazePose handles (150-240 px in a 640x480 frame, about
twice their size in the clip) and walks to and fro in a lane of its own (a grid cell), so
people overlap little however many there are; with more people than distinct pedestrians the
same ones come back mirrored. The loop is `seconds` long and every walk ends where it began,
so the loop can be served round and round.

Only cv2 and numpy are imported here, so that MediaPipe's pose solution can be timed on the
same frames from an environment of its own (`python benchmarks/crowd_scene.py --mediapipe`).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Pedestrians in vtest.avi (768x576) are 60-160 px tall when whole; smaller blobs are parts
# of people or pairs of them far away.
PEDESTRIAN_HEIGHT_PX = (75, 160)
PEDESTRIAN_MIN_ASPECT = 1.6  # height / width of one upright person (two side by side are wider)
FOREGROUND_DIFF = 40  # grey levels from the empty background that count as a person
# Each pedestrian is followed this many clip frames (10 fps) from where it was first seen whole.
WALK_FRAMES = 20
# Walks start this many clip frames apart (4 s): mostly other people each time.
START_EVERY = 40
LANE_MARGIN = 0.06  # of a lane's width, kept free on both sides


@dataclass(frozen=True)
class CrowdOptions:
    """What to render: `people` in a `size` (w, h) frame at `fps`, a loop of `seconds`."""

    people: int
    size: tuple[int, int] = (640, 480)
    fps: float = 30.0
    seconds: float = 4.0
    max_height_px: int = 240  # a person is at most this tall (and fits its lane)
    min_height_px: int = 150

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError(f"a crowd needs at least 1 person, got {self.people}")
        if self.fps <= 0 or self.seconds <= 0:
            raise ValueError(f"fps and seconds must be positive, got {self.fps} and {self.seconds}")


@dataclass
class Sprite:
    """One real person: cut-outs (BGR uint8[h, w, 3] and alpha float32[h, w]) at its source's rate."""

    name: str
    images: list[np.ndarray]
    alphas: list[np.ndarray]
    fps: float

    @property
    def height(self) -> int:
        return max(a.shape[0] for a in self.alphas)

    @property
    def width(self) -> int:
        return max(a.shape[1] for a in self.alphas)


def read_clip(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise FileNotFoundError(f"{path}: no frame could be read (fetch the test media with tests/media.py)")
    return frames


def empty_scene(frames: list[np.ndarray], samples: int = 50) -> np.ndarray:
    """The scene without its people: the per-pixel median of frames spread over the clip."""
    step = max(1, len(frames) // samples)
    return np.median(np.stack(frames[::step]), axis=0).astype(np.uint8)


def _blobs(frame: np.ndarray, background: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(box x, y, w, h; mask uint8[H, W]) of each upright person-sized foreground blob."""
    diff = cv2.absdiff(frame, background).max(axis=2)
    mask = cv2.morphologyEx((diff > FOREGROUND_DIFF).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    h, w = mask.shape
    out = []
    for i in range(1, n):
        x, y, bw, bh, _area = stats[i]
        whole = x > 2 and y > 2 and x + bw < w - 2 and y + bh < h - 2
        if whole and PEDESTRIAN_HEIGHT_PX[0] <= bh <= PEDESTRIAN_HEIGHT_PX[1] and bh >= PEDESTRIAN_MIN_ASPECT * bw:
            out.append((np.array([x, y, bw, bh]), (labels == i).astype(np.uint8)))
    return out


def _cut(frame: np.ndarray, box: np.ndarray, mask: np.ndarray, pad: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x, y, bw, bh = (int(v) for v in box)
    h, w = mask.shape
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
    alpha = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(np.float32), (5, 5), 0)
    return frame[y0:y1, x0:x1].copy(), alpha[y0:y1, x0:x1]


def pedestrians(frames: list[np.ndarray], background: np.ndarray, wanted: int, fps: float = 10.0) -> list[Sprite]:
    """Up to `wanted` pedestrians of the clip, each followed for WALK_FRAMES frames.

    A pedestrian is taken where it is first seen whole and apart from others, then followed
    by the nearest blob of similar height in each next frame; a walk that loses its person
    (hidden, merged with another) before WALK_FRAMES is dropped. Starts are spread over the
    clip so that the sprites are different people.
    """
    cache: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def blobs(index: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if index not in cache:
            cache[index] = _blobs(frames[index], background)
        return cache[index]

    sprites: list[Sprite] = []
    start = 0
    while len(sprites) < wanted and start + WALK_FRAMES < len(frames):
        for box, _ in blobs(start):
            images, alphas, last = [], [], box
            for index in range(start, start + WALK_FRAMES):
                frame = frames[index]
                near = [(b, m) for b, m in blobs(index)
                        if abs(b[3] - last[3]) < 0.2 * last[3]
                        and math.hypot(b[0] + b[2] / 2 - last[0] - last[2] / 2, b[1] - last[1]) < 0.4 * last[3]]
                if not near:
                    break
                last, m = min(near, key=lambda bm: abs(bm[0][0] - last[0]) + abs(bm[0][1] - last[1]))
                image, alpha = _cut(frame, last, m)
                images.append(image)
                alphas.append(alpha)
            if len(images) == WALK_FRAMES:
                sprites.append(Sprite(f"vtest.avi frame {start} at x={box[0]}", images, alphas, fps))
                break  # one person per start: the next one from later in the clip
        start += START_EVERY
    return sprites


def real_people(media: Path, wanted: int = 8) -> tuple[np.ndarray, list[Sprite]]:
    """The empty vtest scene and up to `wanted` of its pedestrians, walking."""
    clip = read_clip(media / "vtest.avi")
    background = empty_scene(clip)
    return background, pedestrians(clip, background, wanted)


def lanes(count: int, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """One lane (x0, y0, x1, y1) per person: a grid of 1 row up to 3 people, 2 rows above."""
    w, h = size
    rows = 1 if count <= 3 else 2
    cols = math.ceil(count / rows)
    return [(c * w // cols, r * h // rows, (c + 1) * w // cols, (r + 1) * h // rows)
            for r in range(rows) for c in range(cols)][:count]


def _paste(frame: np.ndarray, image: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    h, w = alpha.shape
    region = frame[y:y + h, x:x + w]
    a = alpha[:region.shape[0], :region.shape[1], None]
    region[:] = (a * image[:region.shape[0], :region.shape[1]] + (1 - a) * region).astype(np.uint8)


def render(options: CrowdOptions, background: np.ndarray, people: list[Sprite]) -> list[np.ndarray]:
    """The loop's frames, BGR uint8[h, w, 3]: person i is people[i % len(people)] (mirrored on a
    second pass), walking to and fro in lane i once per loop, feet near the lane's bottom."""
    if not people:
        raise ValueError("no person to render")
    w, h = options.size
    scene = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    n_frames = max(1, round(options.seconds * options.fps))
    placed = []
    for i, (x0, y0, x1, y1) in enumerate(lanes(options.people, options.size)):
        sprite = people[i % len(people)]
        height = min(options.max_height_px, int(0.9 * (y1 - y0)))
        scale = min(height / sprite.height, (1 - 2 * LANE_MARGIN) * 0.8 * (x1 - x0) / sprite.width)
        if sprite.height * scale < options.min_height_px:
            raise ValueError(f"{options.people} people do not fit {w}x{h} at {options.min_height_px} px tall or more")
        mirror = (i // len(people)) % 2 == 1
        frames = [(cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC),
                   cv2.resize(al, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR))
                  for im, al in zip(sprite.images, sprite.alphas)]
        if mirror:
            frames = [(im[:, ::-1], al[:, ::-1]) for im, al in frames]
        placed.append((sprite, frames, (x0, y0, x1, y1), i))
    out = []
    for t in range(n_frames):
        frame = scene.copy()
        for sprite, frames, (x0, y0, x1, y1), i in placed:
            k = int(t / options.fps * sprite.fps) % len(frames) if sprite.fps else 0
            image, alpha = frames[k]
            ph, pw = alpha.shape
            span = max(0, (x1 - x0) - pw - 2 * int(LANE_MARGIN * (x1 - x0)))
            phase = (t / n_frames + i / max(options.people, 1)) % 1.0
            walk = 1 - abs(2 * phase - 1)  # 0 -> 1 -> 0 over the loop: seamless when served round
            x = x0 + int(LANE_MARGIN * (x1 - x0)) + int(span * walk)
            y = max(y0, y1 - ph - int(0.04 * (y1 - y0)))
            _paste(frame, image, alpha, x, y)
        out.append(frame)
    return out


def crowd_frames(options: CrowdOptions, media: Path) -> list[np.ndarray]:
    """`options.people` real people walking in vtest's empty scene (see the module docstring)."""
    background, people = real_people(media, max(options.people, 1))
    return render(options, background, people)


# --- MediaPipe on the same frames (an environment of its own may have it) ----------------------


def mediapipe_pose(frames: list[np.ndarray]) -> dict | None:
    """MediaPipe's pose solution (model_complexity=1, tracking on) on `frames`: fps and the share
    of frames with a person found (it follows one person at most); None without mediapipe."""
    try:
        import mediapipe as mp
    except ImportError:
        return None
    solution = mp.solutions.pose.Pose(model_complexity=1, static_image_mode=False)
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
    solution.process(rgb[0])
    found, t0 = 0, time.perf_counter()
    for image in rgb:
        found += solution.process(image).pose_landmarks is not None
    elapsed = time.perf_counter() - t0
    solution.close()
    return {"fps": len(rgb) / elapsed, "frames": len(rgb), "found_share": found / len(rgb), "max_people": 1,
            "version": mp.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[1] / ".cache" / "media",
                        help="folder with vtest.avi (tests/media.py fetches it)")
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the loop")
    parser.add_argument("--write", type=Path, help="write the loop here as an MJPG .avi, to look at it")
    parser.add_argument("--mediapipe", type=Path, metavar="FRAMES.npy",
                        help="time MediaPipe's pose solution on these frames (uint8[T, H, W, 3], np.save) and "
                             "print its figures as JSON; benchmarks/fps.py --crowd --mediapipe-python uses this")
    args = parser.parse_args(argv)
    if args.mediapipe:
        frames = list(np.load(args.mediapipe, allow_pickle=False))
        result = mediapipe_pose(frames)
        if result is None:
            print("crowd_scene: mediapipe is not importable by this Python: install the bench extra "
                  "(pip install -e '.[bench]') in its own environment", file=sys.stderr)
            return 2
        print(json.dumps(result))
        return 0
    try:
        frames = crowd_frames(CrowdOptions(args.people, seconds=args.seconds), args.media)
    except (FileNotFoundError, ValueError) as exc:
        print(f"crowd_scene: {exc}", file=sys.stderr)
        return 2
    out = args.write or Path(f"crowd-{args.people}.avi")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    print(f"wrote {out}: {len(frames)} frames of {args.people} people")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
