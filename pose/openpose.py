"""The "openpose" backend: OpenPose's COCO Caffe model through OpenCV DNN (the seed research's path).

Weights are never shipped or downloaded: the user obtains `pose_deploy_linevec.prototxt` and
`pose_iter_440000.caffemodel` from CMU's OpenPose project (non-commercial licence) and puts
them in `options.weights_dir`, else $OPENPOSE_WEIGHTS, else ~/.cache/openpose.

The net takes a BGR image scaled as pixel/256 - 0.5 (OpenPose's own preprocessing), height
`options.input_height`, width keeping the frame's aspect rounded to a multiple of 8, and gives
57 maps at stride 8: 18 joint heatmaps, background, then 38 part affinity field channels.
The maps are upsampled to the input size (as OpenPose does) and grouped by pose.paf.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from pose.base import People, PoseError, PoseOptions
from pose.coco import N_JOINTS, PAF_PAIRS
from pose.paf import group_people

PROTOTXT = "pose_deploy_linevec.prototxt"
CAFFEMODEL = "pose_iter_440000.caffemodel"
ENV_DIR = "OPENPOSE_WEIGHTS"
DEFAULT_DIR = Path("~/.cache/openpose")
STRIDE = 8
N_OUTPUTS = 57

# Where each joint pair's field (x, y) sits among the 38 PAF channels (after the 19 heatmaps):
# the COCO model does not store its fields in PAF_PAIRS order. These are OpenPose's COCO
# "map index" values minus 19 (the heatmap channels in front of them).
PAF_CHANNELS: tuple[tuple[int, int], ...] = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
    (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19),
    (26, 27),
)
assert len(PAF_CHANNELS) == len(PAF_PAIRS)
_PAF_ORDER = np.array(PAF_CHANNELS, np.intp).ravel()


def weights_dir(options: PoseOptions) -> Path:
    """The folder the weights are read from: option, then environment, then the cache folder."""
    chosen = options.weights_dir or os.environ.get(ENV_DIR) or str(DEFAULT_DIR)
    return Path(chosen).expanduser()


def input_size(frame_hw: tuple[int, int], input_height: int) -> tuple[int, int]:
    """(width, height) of the net input: the given height, width keeping the aspect, multiple of 8."""
    h, w = frame_hw
    width = max(STRIDE, int(round(input_height * w / h / STRIDE)) * STRIDE)
    return width, int(input_height)


class OpenPoseBackend:
    """Multi-person COCO-18 keypoints from OpenPose's COCO model, on the CPU through cv2.dnn."""

    name = "openpose"

    def __init__(self, options: PoseOptions) -> None:
        if options.input_height < STRIDE or options.input_height % STRIDE:
            raise PoseError(f"openpose input height must be a positive multiple of {STRIDE}, got {options.input_height}")
        folder = weights_dir(options)
        prototxt, caffemodel = folder / PROTOTXT, folder / CAFFEMODEL
        absent = [p.name for p in (prototxt, caffemodel) if not p.is_file()]
        if absent:
            problem = "not found in" if len(absent) == 2 else f"incomplete ({absent[0]} missing) in"
            raise PoseError(
                f"OpenPose COCO weights {problem} {folder}: the backend needs {PROTOTXT} and {CAFFEMODEL}; "
                f"obtain them yourself from CMU's OpenPose project (non-commercial licence) and put them there, "
                f"or pass --pose-weights DIR or set {ENV_DIR}"
            )
        self.options = options
        cv2.setNumThreads(max(1, int(options.threads)))
        try:
            self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        except cv2.error as exc:
            raise PoseError(f"OpenCV cannot read the OpenPose model in {folder}: {str(exc).strip().splitlines()[-1]}") from exc
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def maps(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        """Heatmaps float32[18, h, w] and fields float32[19, 2, h, w] at net input size, and the
        (x, y) factors from that grid back to frame pixels."""
        size = input_size(frame_bgr.shape[:2], self.options.input_height)
        blob = cv2.dnn.blobFromImage(frame_bgr, 1 / 256, size, (128, 128, 128), swapRB=False, crop=False)
        self.net.setInput(blob)
        out = self.net.forward()
        if out.ndim != 4 or out.shape[1] != N_OUTPUTS:
            raise PoseError(f"the OpenPose model gave output shape {out.shape}, expected [1, {N_OUTPUTS}, H, W]: use the COCO model")
        # Channels last for one resize of all 57 maps; cubic, as OpenPose upsamples its maps.
        up = cv2.resize(np.ascontiguousarray(out[0].transpose(1, 2, 0)), size, interpolation=cv2.INTER_CUBIC)
        up = up.transpose(2, 0, 1)
        heatmaps = up[:N_JOINTS]
        pafs = up[N_JOINTS + 1:][_PAF_ORDER].reshape(len(PAF_PAIRS), 2, size[1], size[0])
        scale = (frame_bgr.shape[1] / size[0], frame_bgr.shape[0] / size[1])
        return heatmaps, pafs, scale

    def estimate(
        self, frame_bgr: np.ndarray, stream: str = "", seq: int = -1, given: np.ndarray | None = None
    ) -> People:
        heatmaps, pafs, (sx, sy) = self.maps(frame_bgr)
        kp = group_people(heatmaps, pafs)[: max(1, self.options.max_people)]
        # Grid pixel centres to frame pixel centres.
        kp[..., 0] = np.where(kp[..., 2] > 0, (kp[..., 0] + 0.5) * sx - 0.5, 0)
        kp[..., 1] = np.where(kp[..., 2] > 0, (kp[..., 1] + 0.5) * sy - 0.5, 0)
        return People(kp)

    def reset(self, stream: str | None = None) -> None:
        """Nothing to forget: every frame is estimated on its own."""

    def close(self) -> None:
        self.net = None
