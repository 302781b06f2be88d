"""BlazePose detector post-processing: SSD anchors, box and keypoint decoding, NMS.

The constants are those of MediaPipe's pose detection graph for pose_detection.tflite
(mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt, 0.10.14): its anchors are
not stored in the model, so they are generated here the way SsdAnchorsCalculator does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    """SsdAnchorsCalculatorOptions of the pose detector."""

    input_size: int = 224
    num_layers: int = 5
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    strides: tuple[int, ...] = (8, 16, 32, 32, 32)
    offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True
    # TF Object Detection API SSDs: the first layer has 3 anchors only, (0.1, 1:1), (min_scale, 2:1), (min_scale, 1:2)
    reduce_boxes_in_lowest_layer: bool = False


@dataclass(frozen=True)
class DecodeOptions:
    """TensorsToDetectionsCalculatorOptions of the pose detector (reverse_output_order: x first)."""

    num_keypoints: int = 4
    scale: float = 224.0  # x_scale = y_scale = w_scale = h_scale
    score_clip: float = 100.0
    nms_iou: float = 0.3


def _scale(opts: AnchorOptions, layer: int) -> float:
    if opts.num_layers == 1:
        return (opts.min_scale + opts.max_scale) / 2
    return opts.min_scale + (opts.max_scale - opts.min_scale) * layer / (opts.num_layers - 1)


def ssd_anchors(opts: AnchorOptions = AnchorOptions()) -> np.ndarray:
    """float32[N, 4] anchors as cx, cy, w, h in [0, 1] (N = 2254 for the pose detector).

    Consecutive layers with the same stride share one feature map; each layer adds one
    anchor per aspect ratio plus one at the interpolated scale. Order: layer group, row,
    column, anchor, matching the model's output rows.
    """
    groups = []
    layer = 0
    while layer < opts.num_layers:
        sizes: list[tuple[float, float]] = []
        last = layer
        while last < opts.num_layers and opts.strides[last] == opts.strides[layer]:
            scale = _scale(opts, last)
            if last == 0 and opts.reduce_boxes_in_lowest_layer:
                sizes += [(s * math.sqrt(a), s / math.sqrt(a)) for s, a in ((0.1, 1.0), (scale, 2.0), (scale, 0.5))]
                last += 1
                continue
            sizes += [(scale * math.sqrt(a), scale / math.sqrt(a)) for a in opts.aspect_ratios]
            if opts.interpolated_scale_aspect_ratio > 0:
                nxt = 1.0 if last == opts.num_layers - 1 else _scale(opts, last + 1)
                inter = math.sqrt(scale * nxt)
                r = math.sqrt(opts.interpolated_scale_aspect_ratio)
                sizes.append((inter * r, inter / r))
            last += 1
        side = math.ceil(opts.input_size / opts.strides[layer])
        cy, cx = np.meshgrid((np.arange(side) + opts.offset) / side, (np.arange(side) + opts.offset) / side,
                             indexing="ij")
        wh = np.ones((len(sizes), 2)) if opts.fixed_anchor_size else np.asarray(sizes)
        cells = np.stack([cx.ravel(), cy.ravel()], axis=1)
        grid = np.concatenate([np.repeat(cells, len(sizes), axis=0), np.tile(wh, (len(cells), 1))], axis=1)
        groups.append(grid)
        layer = last
    return np.concatenate(groups).astype(np.float32)


def decode(
    regressors: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float,
    opts: DecodeOptions = DecodeOptions(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections above `min_score`, in the detector's normalised input space.

    regressors float32[N, 4 + 2K], raw_scores float32[N] (logits) ->
    boxes float32[D, 4] (x0, y0, x1, y1), keypoints float32[D, K, 2], scores float32[D].
    """
    clipped = np.clip(raw_scores.reshape(-1).astype(np.float64), -opts.score_clip, opts.score_clip)
    scores = 1.0 / (1.0 + np.exp(-clipped))
    keep = np.flatnonzero(scores >= min_score)
    reg = regressors.reshape(len(anchors), -1)[keep].astype(np.float32)
    anc = anchors[keep]
    cx = reg[:, 0] / opts.scale * anc[:, 2] + anc[:, 0]
    cy = reg[:, 1] / opts.scale * anc[:, 3] + anc[:, 1]
    w = reg[:, 2] / opts.scale * anc[:, 2]
    h = reg[:, 3] / opts.scale * anc[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = reg[:, 4:4 + 2 * opts.num_keypoints].reshape(-1, opts.num_keypoints, 2)
    kp = kp / opts.scale * anc[:, None, 2:4] + anc[:, None, 0:2]
    return boxes.astype(np.float32), kp.astype(np.float32), scores[keep].astype(np.float32)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0, y0, x1, y1 box with each row of float[M, 4]."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float,
    max_out: int, weighted: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-maximum suppression, best first.

    Weighted (MediaPipe's choice for this detector): each kept detection is the
    score-weighted mean of the boxes and keypoints it suppresses, which steadies the box
    between frames; its score stays the best one. Plain: the best one as it is.
    """
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while len(order) and len(out_s) < max_out:
        overlap = iou(boxes[order[0]], boxes[order])
        group = order[overlap > iou_threshold]
        group = group if len(group) else order[:1]
        if weighted:
            w = scores[group][:, None]
            out_b.append((boxes[group] * w).sum(0) / w.sum())
            out_k.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        else:
            out_b.append(boxes[order[0]])
            out_k.append(keypoints[order[0]])
        out_s.append(scores[order[0]])
        order = order[overlap <= iou_threshold]
    k = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros((0, k, 2), np.float32), np.zeros((0,), np.float32)
    return (np.asarray(out_b, np.float32), np.asarray(out_k, np.float32), np.asarray(out_s, np.float32))
