"""BlazePose's landmarks for people found by a person detector: the default, fast pose backend.

Per frame and stream: a person detector (pose.person_detector: an SSD trained on Open
Images, which needs no face) searches the whole frame every DETECT_EVERY_FRAMES frames
while fewer than `max_people` are tracked (and on the frame after a track is lost), with,
in the same onnxruntime call, one of the overlapping tiles in turn for people too small
to be seen whole. Each person is cropped upright (pose.roi; a new box that is not clearly
standing is also tried turned a quarter either way, for people lying down), the landmark
model gives 33 landmarks in the crop, and those landmarks place the next frame's crop, so
a tracked person costs one landmark crop per frame (all of a frame's people in one
batched call where BATCH_LANDMARKS says so). Two gates keep skeletons off objects: a new person needs
a detector score of PERSON_MIN_SCORE and landmarks that confirm the box; every track needs
the landmark model's presence score of `min_confidence` each frame, and a detector box on
it in one of MAX_UNSUPPORTED whole-frame searches in a row (with `max_people` tracked the
frame is still searched every CONFIRM_EVERY_FRAMES frames for that). At each search a track
holds one box, and a track whose skeleton slid between two people is put back on one of them.
Landmarks are smoothed per track (One Euro) and converted to COCO-18.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from pose import coco
from pose.anchors import iou
from pose.base import People, PoseError, PoseOptions
from pose.person_detector import INPUT_SIZE as DETECTOR_SIZE
from pose.person_detector import PERSON_FILE, PersonBox, PersonDetector
from pose.roi import Roi, roi_from_points, to_frame, warp_crop
from pose.smoothing import LANDMARK_PARAMS, ROI_PARAMS, OneEuroFilter

DETECTOR_FILE = PERSON_FILE
LANDMARK_FILE = "pose_landmark_full.onnx"
LANDMARK_SIZE = 256
N_LANDMARKS = 33
# Frame rate assumed to turn sequence numbers into seconds for the smoothing filters.
STREAM_FPS = 30.0
# A stream whose frames jump further than this is re-detected: the last crop may be stale.
MAX_GAP_FRAMES = 15
# Same person: hip centres closer than this fraction of the crop side (about a shoulder width)
# and crop sides within this ratio. An overlap test (MediaPipe uses IoU > 0.5 of the crops)
# would merge two people walking side by side, whose large crops overlap.
SAME_PERSON_CENTRE = 0.15
SAME_PERSON_SIZE_RATIO = 1.5
# Detector scores (sigmoid of the Person logit; this SSD rarely goes above 0.6 on people
# 60-100 px tall): a new track needs PERSON_MIN_SCORE, a tracked person is supported by a box
# of SUPPORT_MIN_SCORE. On vtest.avi, cones, a rock and signs score 0.30-0.43.
PERSON_MIN_SCORE = 0.35
SUPPORT_MIN_SCORE = 0.25
# A track that no box supports in this many searches of the whole frame in a row is dropped:
# the landmark model's presence score alone can stay high on a bag or a bollard.
MAX_UNSUPPORTED = 2
# The crop around a detector box: centred on it, its side this many times the box's long side.
# BlazePose's own crops are about 1.25 body heights; on the annotated vtest.avi frames 1.2 found
# the most people (1.1: 77%, 1.2: 79%, 1.3: 74%, 1.45: 75%; benchmarks/people_recall.py).
BOX_TO_ROI = 1.2
# A new person's box wider than this times its height (not clearly standing: a pedestrian's box is
# about 0.4) is also cropped turned by a quarter either way (three landmark calls instead of one, for
# new people only): messi5.jpg turned either way is found so, and missed upright-only.
LYING_ASPECT = 0.6
# People far from the camera are small in a whole-frame 300x300 input. While fewer than
# max_people are tracked, overlapping tiles of TILE_FRACTION of the frame's long side are
# searched as well, one tile per search in turn, in the same call as the whole frame.
TILE_FRACTION = 3 / 8
TILE_MIN_SIDE = 2 * DETECTOR_SIZE  # smaller frames are searched whole only
# While some people are tracked but fewer than max_people, the frame is searched for newcomers
# every few frames only; with max_people tracked, every CONFIRM_EVERY_FRAMES frames, to check
# that the detector still sees each of them.
DETECT_EVERY_FRAMES = 4
CONFIRM_EVERY_FRAMES = 15
# All the people of a frame in one landmark call (the model's batch dimension is dynamic), or
# one call each. On the CPU provider, one thread or two, the batched call measured no faster per
# person (benchmarks/pose_speed.py, models/pose/README.md), so one call each is the default; the
# outputs are bit-identical either way (tests/test_person_detector.py).
BATCH_LANDMARKS = False
# A track lost (presence below min_confidence) makes the next frame search again.
REDETECT_ON_LOSS = True

# BlazePose landmark indices (MediaPipe's pose landmark model card) for each COCO-18 joint;
# the neck has none and is the shoulders' midpoint.
BLAZE_FOR_COCO: dict[int, int] = {
    coco.NOSE: 0,
    coco.R_SHOULDER: 12, coco.R_ELBOW: 14, coco.R_WRIST: 16,
    coco.L_SHOULDER: 11, coco.L_ELBOW: 13, coco.L_WRIST: 15,
    coco.R_HIP: 24, coco.R_KNEE: 26, coco.R_ANKLE: 28,
    coco.L_HIP: 23, coco.L_KNEE: 25, coco.L_ANKLE: 27,
    coco.R_EYE: 5, coco.L_EYE: 2, coco.R_EAR: 8, coco.L_EAR: 7,
}
BLAZE_L_SHOULDER, BLAZE_R_SHOULDER = 11, 12


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def models_dir() -> Path:
    """Where shipped models live: ENGINE_MODELS_DIR, else the repository's models/ folder."""
    return Path(os.environ.get("ENGINE_MODELS_DIR") or repo_root() / "models")


def model_path(name: str, weights_dir: str | None = None) -> Path:
    """A pose .onnx file; PoseError naming the file and how to rebuild it if absent."""
    folder = Path(weights_dir) if weights_dir else models_dir() / "pose"
    path = folder / name
    if not path.is_file():
        script = "convert_person_detector.py" if name == PERSON_FILE else "convert_blazepose.py"
        raise PoseError(
            f"pose model {path} is missing: rebuild it with `python models/pose/{script}` "
            f"(see models/pose/README.md), or set ENGINE_MODELS_DIR to a folder holding pose/{name}")
    return path


def session(path: Path, threads: int) -> ort.InferenceSession:
    """One onnxruntime session on the CPU with explicit thread counts (workers are one per core)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def coco18_from_blazepose(xy: np.ndarray, confidence: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """float32[18, 3] COCO-18 from BlazePose landmarks xy float32[33, 2] (pixels) and confidence float32[33].

    Joints outside the frame get confidence 0 (missing), as the skeleton contract asks.
    """
    out = np.zeros((coco.N_JOINTS, 3), np.float32)
    for j, b in BLAZE_FOR_COCO.items():
        out[j, :2] = xy[b]
        out[j, 2] = confidence[b]
    out[coco.NECK, :2] = (xy[BLAZE_L_SHOULDER] + xy[BLAZE_R_SHOULDER]) / 2
    out[coco.NECK, 2] = min(confidence[BLAZE_L_SHOULDER], confidence[BLAZE_R_SHOULDER])
    w, h = frame_size
    outside = (out[:, 0] < 0) | (out[:, 0] >= w) | (out[:, 1] < 0) | (out[:, 1] >= h)
    out[outside, 2] = 0.0
    return out


@dataclass
class Detection:
    """One person the detector found, in frame pixels: box x0, y0, x1, y1 and score."""

    box: np.ndarray
    score: float

    def roi(self) -> Roi:
        """An upright square crop around the box (the landmark model turns it the next frame)."""
        x0, y0, x1, y1 = (float(v) for v in self.box)
        return Roi((x0 + x1) / 2, (y0 + y1) / 2, BOX_TO_ROI * max(x1 - x0, y1 - y0), 0.0)


@dataclass
class Track:
    """A person followed from frame to frame: the crop for the next frame and the filters."""

    track_id: int
    roi: Roi
    box: np.ndarray
    landmark_filter: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(LANDMARK_PARAMS))
    roi_filter: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(ROI_PARAMS))
    presence: float = 0.0
    keypoints: np.ndarray | None = None
    unsupported: int = 0  # searches of the whole frame in a row that found no box on it


@dataclass
class StreamState:
    tracks: list[Track] = field(default_factory=list)
    last_seq: int = -1
    last_detected: int = -(10**9)
    next_tile: int = 0
    next_id: int = 0


class BlazePoseBackend:
    """COCO-18 people from BlazePose, tracked per stream; see the module docstring."""

    name = "blazepose"

    def __init__(self, options: PoseOptions) -> None:
        if options.max_people < 1:
            raise PoseError(f"max_people must be at least 1, got {options.max_people}")
        if not 0.0 < options.min_confidence < 1.0:
            raise PoseError(f"min_confidence must be between 0 and 1, got {options.min_confidence}")
        self.options = options
        detector_path = model_path(DETECTOR_FILE, options.weights_dir)
        self.detector = PersonDetector(detector_path, session(detector_path, options.threads), SUPPORT_MIN_SCORE)
        self.landmarker = session(model_path(LANDMARK_FILE, options.weights_dir), options.threads)
        self._lmk_input = self.landmarker.get_inputs()[0].name
        self._streams: dict[str, StreamState] = {}
        self._auto_seq: dict[str, int] = {}
        cv2.setNumThreads(max(1, options.threads))  # resize/warp stay within the worker's core budget

    # ------------------------------------------------------------------ models

    def detect(self, frame_bgr: np.ndarray, regions: list[tuple[int, int, int, int]] | None = None) -> list[Detection]:
        """People the detector finds at SUPPORT_MIN_SCORE or more, one per person, best first.

        `regions` (x0, y0, x1, y1; default: the whole frame) are searched in one call; a
        person found in an earlier region wins over the same person in a later one, and a box
        touching a tile's inner edge is left out (the person is whole in a neighbouring tile,
        which overlaps by half, or in the whole frame).
        """
        h, w = frame_bgr.shape[:2]
        regions = regions or [(0, 0, w, h)]
        found = self._detect_regions([frame_bgr[y0:y1, x0:x1] for x0, y0, x1, y1 in regions])
        kept: list[Detection] = []
        for (x0, y0, x1, y1), boxes in zip(regions, found):
            offset = np.array([x0, y0, x0, y0], np.float32)
            for pb in boxes:
                box = pb.box + offset
                if _cut_by_tile(box, (x0, y0, x1, y1), (w, h)):
                    continue
                if not any(overlaps(box, k.box) for k in kept):
                    kept.append(Detection(box, pb.score))
        return sorted(kept, key=lambda d: -d.score)

    def _detect_regions(self, images_bgr: list[np.ndarray]) -> list[list[PersonBox]]:
        """The detector on each image (one onnxruntime call for all)."""
        return self.detector.detect(images_bgr)

    def landmarks(self, frame_bgr: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray, float]:
        """Landmarks of the person in `roi`: xy float32[35, 2] in frame pixels (33 body + 2 auxiliary
        points that place the next crop), confidence float32[35], and the person's presence score."""
        return self.landmarks_many(frame_bgr, [roi])[0]

    def landmarks_many(self, frame_bgr: np.ndarray, rois: list[Roi]) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """`landmarks` for several crops of one frame: one model call for all when BATCH_LANDMARKS."""
        if not rois:
            return []
        crops = np.stack([warp_crop(frame_bgr, roi, LANDMARK_SIZE) for roi in rois])
        x = crops[..., ::-1].astype(np.float32) * np.float32(1 / 255.0)  # BGR -> RGB, [0, 1]
        if BATCH_LANDMARKS:
            outs = [self.landmarker.run(None, {self._lmk_input: x})]
        else:
            outs = [self.landmarker.run(None, {self._lmk_input: x[i:i + 1]}) for i in range(len(rois))]
        raw = np.concatenate([next(o for o in out if o.shape[-1] == 195) for out in outs]).reshape(-1, 39, 5)
        flags = np.concatenate([next(o for o in out if o.shape[-1] == 1) for out in outs]).reshape(-1)
        result = []
        for roi, r, flag in zip(rois, raw, flags):
            xy = to_frame(r[:N_LANDMARKS + 2, :2], roi, LANDMARK_SIZE)
            # visibility (is the joint seen) and presence (is it in the crop) are logits
            conf = np.minimum(sigmoid(r[:N_LANDMARKS + 2, 3]), sigmoid(r[:N_LANDMARKS + 2, 4])).astype(np.float32)
            result.append((xy, conf, float(flag)))
        return result

    # ------------------------------------------------------------------ tracking

    def _state(self, stream: str, seq: int) -> tuple[StreamState, float]:
        """The stream's state and the frame time in seconds; restarts or re-detects on jumps."""
        if seq < 0:
            seq = self._auto_seq.get(stream, -1) + 1
            self._auto_seq[stream] = seq
        state = self._streams.get(stream)
        if state is None or seq <= state.last_seq:
            state = self._streams[stream] = StreamState()  # new stream, or the stream started over
        elif seq - state.last_seq > MAX_GAP_FRAMES:
            state.tracks.clear()
        state.last_seq = seq
        return state, seq / STREAM_FPS

    def estimate(
        self, frame_bgr: np.ndarray, stream: str = "", seq: int = -1, given: np.ndarray | None = None
    ) -> People:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise PoseError(f"blazepose needs a BGR uint8[H, W, 3] frame, got {frame_bgr.dtype}{list(frame_bgr.shape)}")
        state, t_s = self._state(stream, seq)
        regions = self._regions_due(state, frame_bgr.shape)
        if regions:
            detections = self.detect(frame_bgr, regions)
            self._check_support(state, detections)
            assigned = assign_detections(state.tracks, detections)
            recentre_straddlers(state.tracks, detections, assigned)
            self._add_detections(state, detections, set(assigned.values()))
        h, w = frame_bgr.shape[:2]
        alive: list[Track] = []
        for track, found in zip(state.tracks, self.landmarks_many(frame_bgr, [t.roi for t in state.tracks])):
            if track.keypoints is None:  # a new detection: its landmarks must confirm it
                found = self._confirm_new(frame_bgr, track, found)
                if found is None:
                    continue
            xy, conf, presence = found
            if presence < self.options.min_confidence:
                continue
            body, aux = xy[:N_LANDMARKS], xy[N_LANDMARKS:]
            track.presence = presence
            if self.options.smoothing:
                span = body.max(axis=0) - body.min(axis=0)
                value_scale = 1.0 / max(float(span.mean()), 1.0)  # speed in person sizes per second
                body = track.landmark_filter(t_s, body, value_scale)
                aux = track.roi_filter(t_s, aux, value_scale)
            track.keypoints = coco18_from_blazepose(body, conf[:N_LANDMARKS], (w, h))
            track.box = _landmark_box(body, conf[:N_LANDMARKS], track.box)
            track.roi = roi_from_points(aux[0], aux[1])
            alive.append(track)
        if REDETECT_ON_LOSS and len(alive) < len(state.tracks):
            state.last_detected = -(10**9)  # someone was lost: search again next frame
        state.tracks = _drop_duplicates(alive)
        if not state.tracks:
            return People.empty()
        keypoints = np.stack([t.keypoints for t in state.tracks])
        return People(keypoints)

    def _confirm_new(
        self, frame_bgr: np.ndarray, track: Track, found: tuple[np.ndarray, np.ndarray, float],
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The landmarks of a new track if they confirm its box (present, and placing the person where
        the box is), else None. The landmark model wants the person upright in the crop: a box that is
        not clearly taller than wide (someone lying, sitting, bending) is also tried turned a quarter
        either way, and the crop with the highest presence wins."""
        x0, y0, x1, y1 = track.box
        turns = [0.0] + ([math.pi / 2, -math.pi / 2] if x1 - x0 > LYING_ASPECT * (y1 - y0) else [])
        rois = [Roi(track.roi.cx, track.roi.cy, track.roi.size, turn) for turn in turns]
        tried = [found] + self.landmarks_many(frame_bgr, rois[1:])
        best = None
        for roi, (xy, conf, presence) in zip(rois, tried):
            if presence < self.options.min_confidence or (best is not None and presence <= best[2]):
                continue
            if agrees(roi, roi_from_points(xy[N_LANDMARKS], xy[N_LANDMARKS + 1])):
                best = (xy, conf, presence)
        return best

    def _regions_due(self, state: StreamState, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
        """What to search this frame (nothing, or the whole frame first): the whole frame when nobody
        is tracked, every DETECT_EVERY_FRAMES while fewer than max_people are, every
        CONFIRM_EVERY_FRAMES otherwise; with it, while fewer than max_people are tracked, the next tile."""
        h, w = shape[:2]
        full = len(state.tracks) >= self.options.max_people
        every = CONFIRM_EVERY_FRAMES if full else DETECT_EVERY_FRAMES
        if state.tracks and state.last_seq - state.last_detected < every:
            return []
        state.last_detected = state.last_seq
        regions = [(0, 0, w, h)]
        tiles = tile_grid(w, h) if max(w, h) >= TILE_MIN_SIDE else []
        if tiles and not full:
            regions.append(tiles[state.next_tile % len(tiles)])
            state.next_tile += 1
        return regions

    @staticmethod
    def _check_support(state: StreamState, detections: list[Detection]) -> None:
        """Count, per established track, the whole-frame searches in a row that found no box on it;
        drop those past MAX_UNSUPPORTED (a skeleton the detector does not see is on an object)."""
        kept = []
        for track in state.tracks:
            if any(overlaps(track.box, d.box) for d in detections):
                track.unsupported = 0
            else:
                track.unsupported += 1
            if track.unsupported < MAX_UNSUPPORTED:
                kept.append(track)
        state.tracks = kept

    def _add_detections(self, state: StreamState, detections: list[Detection], claimed: set[int]) -> None:
        """New tracks for the detections of PERSON_MIN_SCORE that no tracked person claims (`claimed`:
        their indices), best first, up to max_people."""
        for i, det in enumerate(detections):
            if len(state.tracks) >= self.options.max_people:
                break
            if det.score < PERSON_MIN_SCORE or i in claimed:
                continue
            roi = det.roi()
            if any(same_person(roi, t.roi) for t in state.tracks):
                continue
            state.tracks.append(Track(state.next_id, roi, det.box.copy()))
            state.next_id += 1

    def reset(self, stream: str | None = None) -> None:
        """Forget tracking state (one stream, or all)."""
        if stream is None:
            self._streams.clear()
            self._auto_seq.clear()
        else:
            self._streams.pop(stream, None)
            self._auto_seq.pop(stream, None)

    def tracked(self, stream: str = "") -> list[tuple[int, Roi]]:
        """(internal track id, crop) of each person tracked in `stream`, for diagnostics and tests."""
        state = self._streams.get(stream)
        return [] if state is None else [(t.track_id, t.roi) for t in state.tracks]

    def close(self) -> None:
        self._streams.clear()
        self.detector = self.landmarker = None  # type: ignore[assignment]


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Two boxes (x0, y0, x1, y1) hold one person: IoU above 0.3, or most of the smaller inside the larger."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, float(x1 - x0)) * max(0.0, float(y1 - y0))
    area_a = float((a[2] - a[0]) * (a[3] - a[1]))
    area_b = float((b[2] - b[0]) * (b[3] - b[1]))
    if inter <= 0:
        return False
    return inter / (area_a + area_b - inter) > 0.3 or inter / max(min(area_a, area_b), 1e-6) > 0.7


def assign_detections(tracks: list[Track], detections: list[Detection]) -> dict[int, int]:
    """Track index -> the detection index it holds, one to one, highest IoU first among boxes that
    overlap. One each: a skeleton that slid between two people side by side overlaps both of their
    boxes, and letting it claim both kept the second person from ever being picked up (vtest.avi)."""
    pairs = sorted(((float(iou(t.box, d.box[None])[0]), ti, di) for ti, t in enumerate(tracks)
                    for di, d in enumerate(detections) if overlaps(t.box, d.box)), reverse=True)
    assigned: dict[int, int] = {}
    for _, ti, di in pairs:
        if ti not in assigned and di not in assigned.values():
            assigned[ti] = di
    return assigned


def recentre_straddlers(tracks: list[Track], detections: list[Detection], assigned: dict[int, int]) -> None:
    """A track whose skeleton overlaps the boxes of two people (its crop holds both, and the landmarks
    drift between them) is put back on the person assigned to it: its next crop is that person's
    box, its smoothing starts afresh. Left alone, it stays between them and covers both."""
    for ti, track in enumerate(tracks):
        if ti in assigned and sum(overlaps(track.box, d.box) for d in detections) >= 2:
            best = detections[assigned[ti]]
            track.roi, track.box = best.roi(), best.box.copy()
            track.landmark_filter = OneEuroFilter(LANDMARK_PARAMS)
            track.roi_filter = OneEuroFilter(ROI_PARAMS)


def _cut_by_tile(box: np.ndarray, tile: tuple[int, int, int, int], frame_size: tuple[int, int]) -> bool:
    """The box touches an edge of the tile that is not an edge of the frame: the person goes on outside."""
    x0, y0, x1, y1 = tile
    w, h = frame_size
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return False
    margin = 2.0
    return bool((x0 > 0 and box[0] <= x0 + margin) or (y0 > 0 and box[1] <= y0 + margin)
                or (x1 < w and box[2] >= x1 - margin) or (y1 < h and box[3] >= y1 - margin))


def _landmark_box(body: np.ndarray, confidence: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """float32[4] box around the confident body landmarks (the previous box when too few are seen)."""
    seen = confidence > 0.5
    if seen.sum() < 4:
        return previous
    pts = body[seen]
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)


def same_person(a: Roi, b: Roi) -> bool:
    """Two crops hold the same person: close hip centres for their size, similar sizes."""
    small, large = sorted((a.size, b.size))
    if large > SAME_PERSON_SIZE_RATIO * max(small, 1e-6):
        return False
    return math.hypot(a.cx - b.cx, a.cy - b.cy) < SAME_PERSON_CENTRE * (a.size + b.size) / 2


def agrees(detected: Roi, landmarked: Roi) -> bool:
    """The landmark model confirms a detection: its crop for the next frame is near and alike."""
    small, large = sorted((detected.size, landmarked.size))
    near = math.hypot(detected.cx - landmarked.cx, detected.cy - landmarked.cy) < 0.5 * small
    turn = abs(math.remainder(detected.angle - landmarked.angle, 2 * math.pi))
    return near and large < 2.0 * small and turn < math.pi / 4


def tile_grid(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square tiles (x0, y0, x1, y1) of TILE_FRACTION of the long side, half a tile apart."""
    side = min(max(DETECTOR_SIZE, round(max(width, height) * TILE_FRACTION)), width, height)
    step = side // 2

    def starts(length: int) -> np.ndarray:
        n = math.ceil(max(length - side, 0) / step) + 1
        return np.linspace(0, length - side, n).round().astype(int)

    return [(int(x), int(y), int(x) + side, int(y) + side) for y in starts(height) for x in starts(width)]


def same_pose(a: np.ndarray, b: np.ndarray) -> bool:
    """Two COCO-18 skeletons (float32[18, 3]) lie on one person: their joints nearly coincide."""
    both = (a[:, 2] > 0) & (b[:, 2] > 0)
    if both.sum() < 4:
        return False
    span = np.ptp(a[both, :2], axis=0).max()
    return float(np.median(np.linalg.norm(a[both, :2] - b[both, :2], axis=1))) < 0.2 * max(float(span), 1.0)


def _drop_duplicates(tracks: list[Track]) -> list[Track]:
    """Two tracks that landed on one person keep the older one (lower id)."""
    kept: list[Track] = []
    for track in sorted(tracks, key=lambda t: t.track_id):
        if not any(same_person(track.roi, other.roi) or same_pose(track.keypoints, other.keypoints) for other in kept):
            kept.append(track)
    return kept
