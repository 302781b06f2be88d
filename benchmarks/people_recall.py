"""How many of the people a person can see does the pose stage find, how many skeletons are false, and do ids hold?

    python benchmarks/people_recall.py [--backend blazepose] [--max-people K] [--live] [--only vtest.avi]
                                       [--json PATH] [--draw DIR]

Reads the hand annotations in tests/data/people_annotations.json (people boxed by eye on
OpenCV's sample media, fetched by tests/media.py) and runs a pose backend the way the engine
does: built by `pose.create_backend` from `PoseOptions` as the pose stage builds it, every frame
of the annotated stretch of a clip in order on one stream (the frames between annotated ones
included; the pose worker's tracking state carries over within each chunk of 16 frames, as
`engine run` deals a video file, or over the whole stretch with --live, as a camera would go),
each photo as a one-frame stream of its own; track ids
come from `pose.tracking.Tracker` fed the way the render stage feeds it (the pose worker's torso
colours, the frame size). Per clip and photo it reports:

- visible: annotated people at least `min_height_px` (60) tall, background people left out;
- found: those matched by a skeleton, and recall = found / visible (goal: at least 0.8);
- false skeletons: skeletons matching no annotated person, small ones included (goal: 0);
- id switches: times an annotated person's matched track id differs from the id matched to
  them at their previous matched annotated frame (clips only).

A skeleton matches a person's box when at least half of its confident joints (confidence at
least `--min-joint-confidence`; all given joints when none is) fall inside the box grown by
10% of its height on each side (the boxes are drawn by eye, to a few pixels); pairs are taken
one-to-one, greedily, the highest such fraction first, the skeleton-to-box overlap breaking ties.

The default --max-people is the engine's own default (`engine run`), so the figures are what a
user gets without flags. Timings are not measured here: see benchmarks/pose_speed.py.
`--draw DIR` writes every scored frame with the boxes and skeletons, to check a figure by eye.

Measured (the figures do not depend on the machine's load). vtest.avi: 21 annotated frames,
112 people counted, 90 of them neither cut by the edge nor occluded; photos: 1 and 2 people.

    python benchmarks/people_recall.py [--max-people K] [--live]

                                   vtest recall   (no flag)   false   id switches   messi   basketball
    MediaPipe's face-based detector (main at 159c12c, when the engine's default was 1):
      max_people 1                 0.18 (20/112)  0.19        0       1             1/1     1/2
      max_people 1, --live         0.19 (21/112)  0.21        0       0             1/1     1/2
      max_people 6 or 8            0.38 (42/112)  0.43        3       2             1/1     1/2
      max_people 6 or 8, --live    0.45 (50/112)  0.53        4       3             1/1     1/2
    face-free person detector (main at 9126989 to a214ecc; the engine's default for real media is now 6):
      max_people 1                 0.18 (20/112)  0.22        0       0             1/1     1/2
      max_people 6 (the default)   0.79 (88/112)  0.91        0       6             1/1     2/2
      max_people 6, --live         0.77 (86/112)  0.92        0       5             1/1     2/2
      max_people 8                 0.79 (88/112)  0.91        0       6             1/1     2/2
      max_people 8, --live         0.78 (87/112)  0.92        0       5             1/1     2/2
    and each track holding one detector box, a skeleton between two people put back on one:
      max_people 1                 0.18 (20/112)  0.22        0       0             1/1     1/2
      max_people 6 (the default)   0.81 (91/112)  0.94        0       6             1/1     2/2
      max_people 6, --live         0.78 (87/112)  0.93        0       5             1/1     2/2
      max_people 8                 0.81 (91/112)  0.94        0       4             1/1     2/2
      max_people 8, --live         0.79 (88/112)  0.93        0       5             1/1     2/2

No photo ever had a false skeleton. The old detector's false skeletons were a jacket lying on
the grass, and it missed the man facing away on basketball1.png. With either, the id switches
are among the three men standing at the sign (one behind it), and the people missed are mostly
the man half hidden by the sign and, before one box a track, the two walking side by side.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ANNOTATIONS = REPO / "tests" / "data" / "people_annotations.json"
FLAGS = ("partial", "occluded", "background")
# Boxes are drawn by eye to a few pixels, and joints sit on the body's edge (hands, feet):
# a joint just outside the drawn box still belongs to the person.
BOX_MARGIN = 0.10
# At least this fraction of a skeleton's confident joints inside a box for the two to match.
MIN_INSIDE = 0.5
# BlazePose's landmark visibility for a joint it sees; PoseOptions.min_confidence is the same 0.5
# for a whole person.
MIN_JOINT_CONFIDENCE = 0.5


class AnnotationError(ValueError):
    """The annotation file is not in the documented format; the message names the entry."""


@dataclass(frozen=True)
class Person:
    """One person as annotated: box float[4] x0, y0, x1, y1 in pixels."""

    id: str
    box: tuple[int, int, int, int]
    flags: tuple[str, ...] = ()

    @property
    def height_px(self) -> int:
        return self.box[3] - self.box[1]

    def counted(self, min_height_px: int) -> bool:
        """Counted as visible for the goal: tall enough, and not out of focus in the background."""
        return self.height_px >= min_height_px and "background" not in self.flags


@dataclass(frozen=True)
class Scene:
    """A clip's annotated frames (frame index -> people) or a photo (one frame, index 0)."""

    media: str
    size: tuple[int, int]  # width, height
    frames: dict[int, tuple[Person, ...]]
    first_frame: int = 0
    last_frame: int = 0
    is_clip: bool = False


@dataclass(frozen=True)
class Annotations:
    min_height_px: int
    scenes: tuple[Scene, ...]

    def scene(self, media: str) -> Scene:
        for s in self.scenes:
            if s.media == media:
                return s
        raise KeyError(f"{media!r} is not annotated: one of {[s.media for s in self.scenes]}")


def _people(entries: object, where: str, size: tuple[int, int]) -> tuple[Person, ...]:
    if not isinstance(entries, list):
        raise AnnotationError(f"{where}: 'people' must be a list")
    people = []
    for k, e in enumerate(entries):
        at = f"{where} person {k}"
        if not isinstance(e, dict) or not isinstance(e.get("id"), str) or not e["id"]:
            raise AnnotationError(f"{at}: needs a non-empty string 'id'")
        box = e.get("box")
        if (not isinstance(box, list) or len(box) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in box)):
            raise AnnotationError(f"{at} ({e['id']}): 'box' must be four integers [x0, y0, x1, y1]")
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]):
            raise AnnotationError(f"{at} ({e['id']}): box {box} is not inside the {size[0]}x{size[1]} frame")
        flags = e.get("flags", [])
        if not isinstance(flags, list) or any(f not in FLAGS for f in flags):
            raise AnnotationError(f"{at} ({e['id']}): flags {flags!r} must be a list of {FLAGS}")
        if e.get("height_px") != y1 - y0:
            raise AnnotationError(f"{at} ({e['id']}): height_px {e.get('height_px')!r} is not y1 - y0 = {y1 - y0}")
        people.append(Person(e["id"], (x0, y0, x1, y1), tuple(flags)))
    ids = [p.id for p in people]
    if len(set(ids)) != len(ids):
        raise AnnotationError(f"{where}: an id appears twice in one frame: {ids}")
    return tuple(people)


def load_annotations(path: Path = ANNOTATIONS) -> Annotations:
    """The annotation file, checked (AnnotationError names the entry that is wrong)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"cannot read annotations {path}: {exc}") from exc
    min_h = doc.get("min_height_px")
    if not isinstance(min_h, int) or min_h <= 0:
        raise AnnotationError("'min_height_px' must be a positive integer")
    scenes = []
    for c in doc.get("clips", []):
        size = tuple(c["size"])
        frames = {}
        for f in c["frames"]:
            n = f["frame"]
            if not isinstance(n, int) or not c["first_frame"] <= n <= c["last_frame"] or n in frames:
                raise AnnotationError(f"{c['media']}: frame {n!r} is not a new index in "
                                      f"[{c['first_frame']}, {c['last_frame']}]")
            frames[n] = _people(f["people"], f"{c['media']} frame {n}", size)
        scenes.append(Scene(c["media"], size, dict(sorted(frames.items())), c["first_frame"], c["last_frame"], True))
    for p in doc.get("photos", []):
        size = tuple(p["size"])
        scenes.append(Scene(p["media"], size, {0: _people(p["people"], p["media"], size)}))
    return Annotations(min_h, tuple(scenes))


# ------------------------------------------------------------------ matching


def inside_fractions(keypoints: np.ndarray, people: tuple[Person, ...],
                     min_joint_confidence: float = MIN_JOINT_CONFIDENCE) -> np.ndarray:
    """float32[S, N]: for skeleton s (keypoints float32[S, 18, 3]) the fraction of its confident
    joints inside person n's box grown by BOX_MARGIN of its height."""
    kp = np.asarray(keypoints, np.float32).reshape(-1, 18, 3)
    out = np.zeros((len(kp), len(people)), np.float32)
    for s in range(len(kp)):
        used = kp[s, :, 2] >= min_joint_confidence
        if not used.any():
            used = kp[s, :, 2] > 0
        if not used.any():
            continue
        xy = kp[s, used, :2]
        for n, person in enumerate(people):
            x0, y0, x1, y1 = person.box
            m = BOX_MARGIN * person.height_px
            inside = (xy[:, 0] >= x0 - m) & (xy[:, 0] <= x1 + m) & (xy[:, 1] >= y0 - m) & (xy[:, 1] <= y1 + m)
            out[s, n] = inside.mean()
    return out


def _overlaps(keypoints: np.ndarray, people: tuple[Person, ...]) -> np.ndarray:
    """float32[S, N] IoU of each skeleton's joint box with each annotated box (a tie-breaker)."""
    out = np.zeros((len(keypoints), len(people)), np.float32)
    for s, kp in enumerate(keypoints):
        seen = kp[kp[:, 2] > 0, :2]
        if len(seen) == 0:
            continue
        a = (*seen.min(axis=0), *seen.max(axis=0))
        for n, person in enumerate(people):
            b = person.box
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
            out[s, n] = iw * ih / union if union > 0 else 0.0
    return out


def match(keypoints: np.ndarray, people: tuple[Person, ...],
          min_joint_confidence: float = MIN_JOINT_CONFIDENCE) -> dict[int, int]:
    """{skeleton index: person index}, one-to-one, greedy on the inside fraction (then overlap)."""
    kp = np.asarray(keypoints, np.float32).reshape(-1, 18, 3)
    if len(kp) == 0 or not people:
        return {}
    frac = inside_fractions(kp, people, min_joint_confidence)
    score = frac + 1e-3 * _overlaps(kp, people)  # the overlap only orders equal fractions
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        s, n = divmod(int(flat), len(people))
        if frac[s, n] < MIN_INSIDE:
            break
        if s in pairs or n in taken:
            continue
        pairs[s] = n
        taken.add(n)
    return pairs


@dataclass
class FrameResult:
    visible: int     # counted people (tall enough, not background)
    found: int       # counted people matched by a skeleton
    skeletons: int
    false: int       # skeletons matching no annotated person
    ids: dict[str, int] = field(default_factory=dict)  # annotated id -> matched track id
    visible_clear: int = 0  # counted people with no flag (neither cut by the edge nor occluded)
    found_clear: int = 0


def score_frame(keypoints: np.ndarray, tracks: np.ndarray, people: tuple[Person, ...], min_height_px: int,
                min_joint_confidence: float = MIN_JOINT_CONFIDENCE) -> FrameResult:
    """One annotated frame: skeletons float32[S, 18, 3] with their track ids int[S] against the people."""
    pairs = match(keypoints, people, min_joint_confidence)
    counted = [p.counted(min_height_px) for p in people]
    found = sum(1 for n in pairs.values() if counted[n])
    ids = {people[n].id: int(tracks[s]) for s, n in pairs.items()}
    clear = [c and not people[n].flags for n, c in enumerate(counted)]
    return FrameResult(sum(counted), found, len(keypoints), len(keypoints) - len(pairs), ids,
                       sum(clear), sum(1 for n in pairs.values() if clear[n]))


def id_switches(per_frame_ids: list[dict[str, int]]) -> dict[str, int]:
    """{annotated id: switches}: how often the track id matched to a person differs from the one
    matched at their previous matched annotated frame (frames where they are unmatched are skipped)."""
    last: dict[str, int] = {}
    switches: dict[str, int] = {}
    for ids in per_frame_ids:
        for person, track in ids.items():
            if person in last and last[person] != track:
                switches[person] = switches.get(person, 0) + 1
            switches.setdefault(person, 0)
            last[person] = track
    return switches


# ------------------------------------------------------------------ running the engine's path


def engine_chunk_frames() -> int:
    """Frames per chunk of a recorded stream in `engine run` (capture's --chunk default)."""
    from engine.framework.stage_options import CaptureOptions

    return CaptureOptions.__dataclass_fields__["chunk"].default


class EnginePath:
    """The pose stage's backend and the render stage's tracker for one stream, as the engine runs them.

    chunk: capture deals a recorded stream (a video file) to the pose workers in chunks of this
    many frames, and a worker forgets the stream's tracking state at each chunk's first frame
    (engine.framework.dispatch); render's tracker goes on across chunks. 0: no chunks, as for a
    live source (a camera, a network stream).
    """

    def __init__(self, backend: str, max_people: int, threads: int = 1, chunk: int = 0) -> None:
        from pose import PoseOptions, create_backend

        # As stages/pose.py builds it (the other PoseOptions fields at their defaults).
        self.backend = create_backend(PoseOptions(backend=backend, max_people=max_people, threads=threads))
        self.chunk = chunk

    def run(self, frames, stream: str):
        """Yields (frame index, frame, keypoints float32[S, 18, 3], track ids int32[S]) for (index, frame) given in order."""
        from pose.base import People
        from pose.tracking import Tracker, appearance_descriptors

        tracker = Tracker()  # one per stream, as render's StreamState holds
        for seq, frame in frames:
            if self.chunk and seq % self.chunk == 0:
                self.backend.reset(stream)  # a `fresh` frame: stages/pose.py resets before estimating
            people = self.backend.estimate(frame, stream, seq)
            # The pose worker sends the torso colours, render's tracker reads them with the frame size.
            appearance = appearance_descriptors(frame, people.keypoints)
            tracked = tracker.update(People(people.keypoints, people.boxes), (frame.shape[1], frame.shape[0]),
                                     appearance=appearance)
            yield seq, frame, tracked.keypoints, tracked.tracks

    def close(self) -> None:
        self.backend.close()


def clip_frames(path: Path, first: int, last: int):
    """(index, BGR frame) for frames first..last of a video, decoded in order from its start."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SystemExit(f"people_recall: cannot open {path}: fetch the test media (tests/media.py) or pass --media-dir")
    try:
        index = 0
        while index <= last:
            ok, frame = cap.read()
            if not ok:
                raise SystemExit(f"people_recall: {path} ends at frame {index}, before annotated frame {last}")
            if index >= first:
                yield index, frame
            index += 1
    finally:
        cap.release()


@dataclass
class SceneReport:
    media: str
    frames_annotated: int
    visible: int
    found: int
    false_skeletons: int
    skeletons: int
    id_switches: int | None
    switches_by_person: dict[str, int] | None
    visible_clear: int = 0
    found_clear: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.visible if self.visible else 1.0

    @property
    def recall_clear(self) -> float:
        """Recall on the counted people neither cut by the frame's edge nor occluded."""
        return self.found_clear / self.visible_clear if self.visible_clear else 1.0

    def as_dict(self) -> dict:
        return {"media": self.media, "frames_annotated": self.frames_annotated, "visible": self.visible,
                "found": self.found, "recall": round(self.recall, 3),
                "visible_clear": self.visible_clear, "found_clear": self.found_clear,
                "recall_clear": round(self.recall_clear, 3), "false_skeletons": self.false_skeletons,
                "skeletons": self.skeletons, "id_switches": self.id_switches,
                "switches_by_person": self.switches_by_person}


def draw_frame(frame: np.ndarray, keypoints: np.ndarray, tracks: np.ndarray, people: tuple[Person, ...],
               pairs: dict[int, int], min_height_px: int) -> np.ndarray:
    """The frame with the annotated boxes (red: counted, orange: not counted) and the skeletons
    (drawn by the viewer's own annotator), each labelled with its track id, magenta when false."""
    from pose.base import People
    from pose.draw import SkeletonAnnotator

    out = SkeletonAnnotator(thickness=1, joint_radius=2)(frame.copy(), People(keypoints))
    for p in people:
        colour = (0, 0, 255) if p.counted(min_height_px) else (0, 140, 255)
        cv2.rectangle(out, p.box[:2], p.box[2:], colour, 1)
        cv2.putText(out, p.id, (p.box[0], p.box[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    for s, kp in enumerate(keypoints):
        seen = kp[kp[:, 2] > 0, :2]
        if len(seen):
            colour = (0, 200, 0) if s in pairs else (255, 0, 255)
            x, y = seen.min(axis=0).astype(int)
            cv2.putText(out, f"#{int(tracks[s])}", (x, max(10, y - 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    return out


def measure_scene(scene: Scene, media_file: Path, engine: EnginePath, min_height_px: int,
                  frames: list[int] | None = None, min_joint_confidence: float = MIN_JOINT_CONFIDENCE,
                  draw_dir: Path | None = None) -> SceneReport:
    """Runs the engine's path over a scene and scores its annotated frames (or the given subset of them);
    with draw_dir, writes each scored frame there as a PNG to check by eye."""
    wanted = sorted(frames) if frames is not None else sorted(scene.frames)
    if scene.is_clip:
        source = clip_frames(media_file, scene.first_frame, max(wanted))
    else:
        image = cv2.imread(str(media_file), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"people_recall: cannot read {media_file}")
        source = iter([(0, image)])
    results: list[FrameResult] = []
    for seq, frame, keypoints, tracks in engine.run(source, scene.media):
        if seq in wanted:
            results.append(score_frame(keypoints, tracks, scene.frames[seq], min_height_px, min_joint_confidence))
            if draw_dir is not None:
                pairs = match(keypoints, scene.frames[seq], min_joint_confidence)
                draw_dir.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(draw_dir / f"{Path(scene.media).stem}_{seq:05d}.png"),
                            draw_frame(frame, keypoints, tracks, scene.frames[seq], pairs, min_height_px))
    switches = id_switches([r.ids for r in results]) if scene.is_clip else None
    return SceneReport(scene.media, len(results), sum(r.visible for r in results), sum(r.found for r in results),
                       sum(r.false for r in results), sum(r.skeletons for r in results),
                       None if switches is None else sum(switches.values()), switches,
                       sum(r.visible_clear for r in results), sum(r.found_clear for r in results))


def engine_default_max_people() -> int:
    """What `engine run` uses without --max-people on these media (configs' defaults aside):
    0 there means the source kind's default, the real-media one for video files and photos."""
    from engine.framework.config import RunOptions
    from engine.sources.spec import REAL_MEDIA_MAX_PEOPLE

    return RunOptions.__dataclass_fields__["max_people"].default or REAL_MEDIA_MAX_PEOPLE


def table(reports: list[SceneReport]) -> str:
    rows = [("media", "frames", "visible", "found", "recall", "recall (no flag)", "false", "skeletons", "id switches")]
    for r in reports:
        rows.append((r.media, str(r.frames_annotated), str(r.visible), str(r.found), f"{r.recall:.2f}",
                     f"{r.recall_clear:.2f} of {r.visible_clear}",
                     str(r.false_skeletons), str(r.skeletons), "-" if r.id_switches is None else str(r.id_switches)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--backend", default="blazepose", help="pose backend (default: blazepose)")
    ap.add_argument("--max-people", type=int, default=None,
                    help="people per frame (default: what `engine run` uses without the flag)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default: 1, as one worker per core)")
    ap.add_argument("--annotations", type=Path, default=ANNOTATIONS, help="annotation file (default: tests/data/...)")
    ap.add_argument("--media-dir", type=Path, default=None, help="folder holding the media (default: tests/media.py's)")
    ap.add_argument("--only", action="append", default=None, metavar="MEDIA", help="only this clip or photo (repeatable)")
    ap.add_argument("--min-joint-confidence", type=float, default=MIN_JOINT_CONFIDENCE)
    ap.add_argument("--live", action="store_true",
                    help="run the clip as a live source would go (no chunks, tracking state never reset); "
                         "default: as `engine run` deals a video file, in chunks with fresh tracking state")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--draw", type=Path, metavar="DIR", help="write each scored frame here, boxes and skeletons drawn")
    args = ap.parse_args(argv)

    try:
        annotations = load_annotations(args.annotations)
    except AnnotationError as exc:
        print(f"people_recall: {exc}", file=sys.stderr)
        return 2
    max_people = args.max_people if args.max_people is not None else engine_default_max_people()
    if max_people < 1:
        print(f"people_recall: --max-people must be at least 1, got {max_people}", file=sys.stderr)
        return 2
    media_dir = args.media_dir
    if media_dir is None:
        sys.path.insert(0, str(REPO / "tests"))
        from media import media_dir as fetch_media

        media_dir = fetch_media()
    scenes = [s for s in annotations.scenes if not args.only or s.media in args.only]
    if args.only and len(scenes) != len(set(args.only)):
        print(f"people_recall: --only names media that are not annotated: use {[s.media for s in annotations.scenes]}",
              file=sys.stderr)
        return 2
    from pose import PoseError

    try:
        chunk = 0 if args.live else engine_chunk_frames()
        engine = EnginePath(args.backend, max_people, args.threads, chunk)
    except PoseError as exc:
        print(f"people_recall: {exc}", file=sys.stderr)
        return 2
    try:
        reports = [measure_scene(s, media_dir / s.media, engine, annotations.min_height_px,
                                 min_joint_confidence=args.min_joint_confidence, draw_dir=args.draw) for s in scenes]
    finally:
        engine.close()
    dealt = "as a live source (no chunks)" if args.live else f"as engine run deals a file (chunks of {chunk} frames)"
    print(f"backend {args.backend}, max_people {max_people}, clip {dealt}; people at least {annotations.min_height_px} px tall")
    print(table(reports))
    if args.json:
        out = {"backend": args.backend, "max_people": max_people, "chunk": chunk, "min_height_px": annotations.min_height_px,
               "scenes": [r.as_dict() for r in reports]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
