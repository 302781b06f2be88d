"""Person boxes from a general object detector, so that finding a person needs no face.

BlazePose's own detector is trained to find a face and extrapolate the body: it misses
people seen from behind or in profile, large and close, or cut by the frame edge, and on
vtest.avi it found about 1.3 of 5-8 pedestrians a frame. This one is MediaPipe Objectron's
SSD MobileNetV2 trained on Open Images v4 (24 classes, `Person` among them; converted
by models/pose/convert_person_detector.py): it sees whole bodies from any side.

MediaPipe's own graph for it (modules/objectron/object_detection_oid_v4_cpu.pbtxt) gives
the preprocessing (the image stretched to 300x300, RGB in [-1, 1]), the anchors and the
box decoding, reproduced here. Several images (the frame and a tile) go in one call.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from pose.anchors import AnchorOptions, iou, ssd_anchors

PERSON_FILE = "person_detection.onnx"
INPUT_SIZE = 300
PERSON_CLASS = 4  # index in object_detection_oidv4_labelmap.txt ("???" is 0)
N_CLASSES = 24
ANCHORS = AnchorOptions(
    input_size=INPUT_SIZE, num_layers=6, min_scale=0.2, max_scale=0.95, strides=(16, 32, 64, 128, 256, 512),
    aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333), fixed_anchor_size=False, reduce_boxes_in_lowest_layer=True,
)
# TensorsToDetectionsCalculator options of that graph: y first, sizes as exp().
XY_SCALE = 10.0
WH_SCALE = 5.0
NMS_IOU = 0.4


@dataclass(frozen=True)
class PersonBox:
    """One person found: box x0, y0, x1, y1 in pixels of the image searched, score 0-1."""

    box: np.ndarray
    score: float


class PersonDetector:
    """Person boxes above `min_score` in one or more images, one onnxruntime call for all."""

    def __init__(self, path: Path, sess: ort.InferenceSession, min_score: float) -> None:
        self.path = path
        self.session = sess
        self.min_score = min_score
        self.anchors = ssd_anchors(ANCHORS)
        self._input = sess.get_inputs()[0].name
        outs = sess.get_outputs()
        self._box_index = next(i for i, o in enumerate(outs) if o.shape[-1] == 4)
        self._score_index = next(i for i, o in enumerate(outs) if o.shape[-1] == N_CLASSES)

    def detect(self, images_bgr: list[np.ndarray]) -> list[list[PersonBox]]:
        """People in each image, best first, in that image's pixels."""
        if not images_bgr:
            return []
        x = np.stack([model_input(img) for img in images_bgr])
        outs = self.session.run(None, {self._input: x})
        found = []
        for i, img in enumerate(images_bgr):
            h, w = img.shape[:2]
            boxes, scores = decode(outs[self._box_index][i], outs[self._score_index][i, :, PERSON_CLASS],
                                   self.anchors, self.min_score)
            boxes, scores = nms(boxes, scores, NMS_IOU)
            scale = np.array([w, h, w, h], np.float32)
            found.append([PersonBox(b * scale, float(s)) for b, s in zip(boxes, scores)])
        return found


def model_input(image_bgr: np.ndarray) -> np.ndarray:
    """float32[300, 300, 3]: the image stretched (the model was trained so), RGB in [-1, 1]."""
    small = cv2.resize(image_bgr, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)


def decode(
    encodings: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes float32[D, 4] (x0, y0, x1, y1 in [0, 1]) and scores float32[D] at or above `min_score`.

    encodings float32[N, 4] are (y, x, h, w) offsets per anchor, logits float32[N] the class's.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -80.0, 80.0)))
    keep = np.flatnonzero(scores >= min_score)
    enc = encodings[keep].astype(np.float64)
    anc = anchors[keep].astype(np.float64)
    cy = enc[:, 0] / XY_SCALE * anc[:, 3] + anc[:, 1]
    cx = enc[:, 1] / XY_SCALE * anc[:, 2] + anc[:, 0]
    h = np.exp(np.clip(enc[:, 2] / WH_SCALE, -20.0, 20.0)) * anc[:, 3]
    w = np.exp(np.clip(enc[:, 3] / WH_SCALE, -20.0, 20.0)) * anc[:, 2]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes.astype(np.float32), scores[keep].astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Plain non-maximum suppression, best first (MediaPipe's NonMaxSuppressionCalculator, IoU)."""
    order = np.argsort(-scores, kind="stable")
    kept = []
    while len(order):
        kept.append(order[0])
        order = order[1:][iou(boxes[order[0]], boxes[order[1:]]) <= iou_threshold]
    return boxes[kept].reshape(-1, 4), scores[kept]
