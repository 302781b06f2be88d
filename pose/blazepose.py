"""BlazePose (MediaPipe's pose models, converted to ONNX): the default, fast pose backend.

Per frame and stream: a detector finds people only when fewer than `max_people` are
being tracked (the whole frame, and overlapping tiles in turn for people too small to be
seen whole); each tracked person is cropped upright (pose.roi), the landmark model
gives 33 landmarks in the crop, and those landmarks place the next frame's crop, so a
single tracked person costs one landmark call per frame. A person is dropped (and the
detector runs again) when the landmark model's presence score falls below
`min_confidence`. Landmarks are smoothed per track (One Euro) and converted to COCO-18.
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
from pose.anchors import DecodeOptions, decode, nms, ssd_anchors
from pose.base import People, PoseError, PoseOptions
from pose.roi import Roi, roi_from_points, to_frame, warp_crop
from pose.smoothing import LANDMARK_PARAMS, ROI_PARAMS, OneEuroFilter

DETECTOR_FILE = "pose_detection.onnx"
LANDMARK_FILE = "pose_landmark_full.onnx"
DETECTOR_SIZE = 224
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
# People far from the camera are too small for the detector in a whole-frame letterbox
# (BlazePose is trained on people filling the picture). While fewer than max_people are
# tracked, overlapping tiles of 3/8 of the frame's long side are searched as well, one tile
# per frame in turn, so the cost is one detector call per frame rather than a burst of 15.
# On vtest.avi (768x576), 288-pixel tiles find 2.7x more pedestrians than 384-pixel ones.
TILE_FRACTION = 3 / 8
TILE_MIN_SIDE = 2 * DETECTOR_SIZE  # smaller frames are searched whole only
# While some people are tracked but fewer than max_people, the whole frame is searched for
# newcomers every few frames only: the detector costs about one landmark call.
DETECT_EVERY_FRAMES = 4

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
    """A BlazePose .onnx file; PoseError naming the file and how to rebuild it if absent."""
    folder = Path(weights_dir) if weights_dir else models_dir() / "pose"
    path = folder / name
    if not path.is_file():
        raise PoseError(
            f"BlazePose model {path} is missing: rebuild it with `python models/pose/convert_blazepose.py` "
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
    """One detector hit in frame pixels: box x0, y0, x1, y1, 4 keypoints, score."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    def roi(self) -> Roi:
        return roi_from_points(self.keypoints[0], self.keypoints[1])


@dataclass
class Track:
    """A person followed from frame to frame: the crop for the next frame and the filters."""

    track_id: int
    roi: Roi
    landmark_filter: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(LANDMARK_PARAMS))
    roi_filter: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(ROI_PARAMS))
    presence: float = 0.0
    keypoints: np.ndarray | None = None


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
        self.detector = session(model_path(DETECTOR_FILE, options.weights_dir), options.threads)
        self.landmarker = session(model_path(LANDMARK_FILE, options.weights_dir), options.threads)
        self._det_input = self.detector.get_inputs()[0].name
        self._lmk_input = self.landmarker.get_inputs()[0].name
        self.anchors = ssd_anchors()
        self._streams: dict[str, StreamState] = {}
        self._auto_seq: dict[str, int] = {}
        cv2.setNumThreads(max(1, options.threads))  # resize/warp stay within the worker's core budget

    # ------------------------------------------------------------------ models

    def detect(
        self, frame_bgr: np.ndarray, regions: list[tuple[int, int, int, int]] | None = None,
        wanted: int | None = None,
    ) -> list[Detection]:
        """People the detector finds, one per person, at most `wanted` (default max_people).

        `regions` (x0, y0, x1, y1; default: the whole frame) are searched in order; a person
        found in an earlier region wins over the same person in a later one (a tile may cut
        a large person in two), and within a region the best scores come first.
        """
        h, w = frame_bgr.shape[:2]
        wanted = self.options.max_people if wanted is None else wanted
        kept: list[Detection] = []
        for x0, y0, x1, y1 in regions or [(0, 0, w, h)]:
            offset = np.array([x0, y0], np.float32)
            found = self._detect_region(frame_bgr[y0:y1, x0:x1])
            for det in sorted(found, key=lambda d: -d.score):
                det = Detection(det.box + np.tile(offset, 2), det.keypoints + offset, det.score)
                if len(kept) < wanted and not any(same_person(det.roi(), k.roi()) for k in kept):
                    kept.append(det)
        return kept

    def _detect_region(self, image_bgr: np.ndarray) -> list[Detection]:
        """Detections in one image (the frame or a tile), in its pixels."""
        h, w = image_bgr.shape[:2]
        scale = DETECTOR_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        x0, y0 = (DETECTOR_SIZE - nw) // 2, (DETECTOR_SIZE - nh) // 2
        canvas = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.uint8)
        canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)
        x = (rgb * np.float32(1 / 127.5) - np.float32(1.0))[None]
        regressors, scores = self._detector_outputs(self.detector.run(None, {self._det_input: x}))
        boxes, kps, conf = decode(regressors[0], scores[0], self.anchors, self.options.min_confidence)
        boxes, kps, conf = nms(boxes, kps, conf, DecodeOptions().nms_iou, self.options.max_people, weighted=True)
        # undo the letterbox: normalised detector input -> image pixels
        offset = np.array([x0, y0], np.float32)
        to_px = lambda p: (p * DETECTOR_SIZE - offset) / scale  # noqa: E731
        return [
            Detection(np.concatenate([to_px(b[:2]), to_px(b[2:])]), to_px(k), float(s))
            for b, k, s in zip(boxes, kps, conf)
        ]

    @staticmethod
    def _detector_outputs(outs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        regressors = next(o for o in outs if o.shape[-1] == 12)
        scores = next(o for o in outs if o.shape[-1] == 1)
        return regressors, scores

    def landmarks(self, frame_bgr: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray, float]:
        """Landmarks of the person in `roi`: xy float32[35, 2] in frame pixels (33 body + 2 auxiliary
        points that place the next crop), confidence float32[35], and the person's presence score."""
        crop = warp_crop(frame_bgr, roi, LANDMARK_SIZE)
        x = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] * np.float32(1 / 255.0)
        outs = self.landmarker.run(None, {self._lmk_input: x})
        raw = next(o for o in outs if o.shape[-1] == 195).reshape(39, 5)
        flag = float(next(o for o in outs if o.shape[-1] == 1).reshape(-1)[0])
        xy = to_frame(raw[:N_LANDMARKS + 2, :2], roi, LANDMARK_SIZE)
        # visibility (is the joint seen) and presence (is it in the crop) are logits
        conf = np.minimum(sigmoid(raw[:N_LANDMARKS + 2, 3]), sigmoid(raw[:N_LANDMARKS + 2, 4])).astype(np.float32)
        return xy, conf, flag

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
        k = self.options.max_people
        if len(state.tracks) < k:  # fast path: a full set of good tracks skips the detector
            self._add_detections(state, self.detect(frame_bgr, self._regions_due(state, frame_bgr.shape)))
        h, w = frame_bgr.shape[:2]
        alive: list[Track] = []
        for track in state.tracks:
            xy, conf, presence = self.landmarks(frame_bgr, track.roi)
            if presence < self.options.min_confidence:
                continue
            body, aux = xy[:N_LANDMARKS], xy[N_LANDMARKS:]
            if track.keypoints is None and not agrees(track.roi, roi_from_points(aux[0], aux[1])):
                continue  # a new detection whose landmarks place the person elsewhere: a false hit
            track.presence = presence
            if self.options.smoothing:
                span = body.max(axis=0) - body.min(axis=0)
                value_scale = 1.0 / max(float(span.mean()), 1.0)  # speed in person sizes per second
                body = track.landmark_filter(t_s, body, value_scale)
                aux = track.roi_filter(t_s, aux, value_scale)
            track.keypoints = coco18_from_blazepose(body, conf[:N_LANDMARKS], (w, h))
            track.roi = roi_from_points(aux[0], aux[1])
            alive.append(track)
        state.tracks = _drop_duplicates(alive)
        if not state.tracks:
            return People.empty()
        keypoints = np.stack([t.keypoints for t in state.tracks])
        return People(keypoints)

    @staticmethod
    def _regions_due(state: StreamState, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
        """What to search this frame: the whole frame when nobody is tracked or every few frames,
        and otherwise (or as well, when nobody is tracked) the next tile in turn."""
        h, w = shape[:2]
        regions = []
        if not state.tracks or state.last_seq - state.last_detected >= DETECT_EVERY_FRAMES:
            regions.append((0, 0, w, h))
            state.last_detected = state.last_seq
        tiles = tile_grid(w, h) if max(w, h) >= TILE_MIN_SIDE else []
        if tiles and (not regions or not state.tracks):
            regions.append(tiles[state.next_tile % len(tiles)])
            state.next_tile += 1
        return regions

    def _add_detections(self, state: StreamState, detections: list[Detection]) -> None:
        """New tracks for detections that match no tracked person, best first, up to max_people."""
        for det in detections:
            if len(state.tracks) >= self.options.max_people:
                break
            roi = det.roi()
            if any(same_person(roi, t.roi) for t in state.tracks):
                continue
            state.tracks.append(Track(state.next_id, roi))
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
