"""SSD anchors, as MediaPipe's SsdAnchorsCalculator makes them, and box IoU.

Anchors are not stored in MediaPipe's detector models: they are generated from the graph's
options. The defaults are those of BlazePose's own pose detector
(mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt, 0.10.14), which the engine no
longer ships; pose.person_detector gives the Objectron SSD's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    """SsdAnchorsCalculatorOptions (defaults: BlazePose's pose detector)."""

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
