"""PAF grouping on constructed maps, and the OpenPose backend's loading and cv2.dnn plumbing."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose import PoseError, PoseOptions, create_backend
from pose.coco import PAF_PAIRS
from pose.paf import group_people

H, W = 240, 320
STANDING = np.array([
    [0, -70], [0, -50], [-15, -50], [-22, -25], [-27, -2], [15, -50], [22, -25], [27, -2],
    [-10, 0], [-11, 35], [-12, 70], [10, 0], [11, 35], [12, 70],
    [-4, -74], [4, -74], [-8, -72], [8, -72],
], np.float32)


def person(cx: float, cy: float, scale: float = 1.0, missing: tuple[int, ...] = ()) -> np.ndarray:
    kp = np.ones((18, 3), np.float32)
    kp[:, :2] = np.rint(STANDING * scale + np.float32([cx, cy]))
    kp[list(missing), 2] = 0
    return kp


def maps(people: list[np.ndarray], sigma: float = 2.0, width: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (Gaussian peaks, max over people) and PAFs (unit vectors along each limb, averaged)."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    heat = np.zeros((18, H, W), np.float32)
    paf = np.zeros((19, 2, H, W), np.float32)
    count = np.zeros((19, H, W), np.float32)
    for kp in people:
        for j in range(18):
            if kp[j, 2] > 0:
                g = np.exp(-((xs - kp[j, 0]) ** 2 + (ys - kp[j, 1]) ** 2) / (2 * sigma ** 2))
                heat[j] = np.maximum(heat[j], g)
        for k, (a, b) in enumerate(PAF_PAIRS):
            if kp[a, 2] == 0 or kp[b, 2] == 0:
                continue
            d = kp[b, :2] - kp[a, :2]
            length = float(np.linalg.norm(d))
            u = d / length
            rx, ry = xs - kp[a, 0], ys - kp[a, 1]
            along = rx * u[0] + ry * u[1]
            across = np.abs(rx * u[1] - ry * u[0])
            on = (along >= 0) & (along <= length) & (across <= width)
            paf[k, 0][on] += u[0]
            paf[k, 1][on] += u[1]
            count[k][on] += 1
    paf /= np.maximum(count, 1)[:, None]
    return heat, paf


def match(found: np.ndarray, truth: list[np.ndarray], tol: float = 1.5) -> None:
    """Each found person is one true person, joint for joint (no mixing), and all are found."""
    assert len(found) == len(truth)
    matched = set()
    for kp in found:
        gaps = [np.abs(kp[:, :2] - t[:, :2]).max(axis=1) for t in truth]
        # The true person owning the neck must own every other found joint too.
        owner = int(np.argmin([g[1] for g in gaps]))
        t = truth[owner]
        np.testing.assert_array_equal(kp[:, 2] > 0, t[:, 2] > 0)
        visible = t[:, 2] > 0
        assert gaps[owner][visible].max() <= tol
        assert np.all(kp[visible, 2] > 0.9)
        matched.add(owner)
    assert len(matched) == len(truth)


def test_two_people_are_recovered_exactly():
    truth = [person(100, 120), person(215, 130, 1.1)]
    match(group_people(*maps(truth)), truth)


def test_three_people_close_together_are_never_mixed():
    # Hands of neighbours 10-15 px apart, one person with the legs out of view.
    truth = [person(90, 120), person(150, 118, 0.95), person(215, 125, 1.05, missing=(9, 10, 12, 13))]
    found = group_people(*maps(truth))
    match(found, truth)
    # Strongest first: the person with legs missing has the fewest joints, so comes last.
    assert (found[-1][:, 2] > 0).sum() == 14


def test_nobody_and_too_few_parts():
    heat, paf = maps([])
    assert group_people(heat, paf).shape == (0, 18, 3)
    lone = person(160, 120, missing=tuple(range(2, 18)))  # nose and neck only
    assert len(group_people(*maps([lone]))) == 0
    assert len(group_people(*maps([lone]), min_parts=2)) == 1
    with pytest.raises(ValueError):
        group_people(heat[:17], paf)


# --- the backend -------------------------------------------------------------------------

PROTOTXT = "pose_deploy_linevec.prototxt"
CAFFEMODEL = "pose_iter_440000.caffemodel"


def test_missing_weights_name_both_files_and_the_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENPOSE_WEIGHTS", raising=False)
    with pytest.raises(PoseError) as err:
        create_backend(PoseOptions(backend="openpose", weights_dir=str(tmp_path)))
    message = str(err.value)
    assert "\n" not in message
    for needed in (PROTOTXT, CAFFEMODEL, str(tmp_path), "non-commercial"):
        assert needed in message
    # The environment variable is the next place looked at.
    monkeypatch.setenv("OPENPOSE_WEIGHTS", str(tmp_path / "env"))
    with pytest.raises(PoseError, match=str(tmp_path / "env")):
        create_backend(PoseOptions(backend="openpose"))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _blob(array: np.ndarray) -> bytes:
    """caffe.BlobProto: shape (7) = BlobShape{dim (1), packed}, data (5), packed floats."""
    dims = b"".join(_varint(d) for d in array.shape)
    data = struct.pack(f"<{array.size}f", *array.astype(np.float32).ravel())
    return _field(7, _field(1, dims)) + _field(5, data)


def tiny_openpose(folder: Path) -> None:
    """A one-convolution stand-in for the OpenPose COCO net: 57 channels at stride 8.

    Channel 1 (neck) lights up on blue, 2 (r-shoulder) on green, 5 (l-shoulder) on red; the
    fields of neck->r-shoulder (channels 31, 32) and neck->l-shoulder (39, 40) are constant
    unit vectors pointing right and down.
    """
    (folder / PROTOTXT).write_text(
        'name: "tiny"\ninput: "image"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 64\ninput_dim: 64\n'
        'layer { name: "net_output" type: "Convolution" bottom: "image" top: "net_output"\n'
        "  convolution_param { num_output: 57 kernel_size: 8 stride: 8 } }\n"
    )
    weights = np.zeros((57, 3, 8, 8), np.float32)
    bias = np.zeros(57, np.float32)
    # Input is pixel/256 - 0.5 (OpenPose's own scaling): the block mean + 0.5 is 0 on black, ~1 on full colour.
    for channel, colour in ((1, 0), (2, 1), (5, 2)):
        weights[channel, colour] = 1 / 64
        bias[channel] = 0.5
    bias[31], bias[40] = 1.0, 1.0
    layer = _field(1, b"net_output") + _field(2, b"Convolution") + _field(7, _blob(weights)) + _field(7, _blob(bias))
    (folder / CAFFEMODEL).write_bytes(_field(100, layer))


def test_dnn_plumbing_with_a_tiny_caffe_model(tmp_path):
    tiny_openpose(tmp_path)
    backend = create_backend(PoseOptions(backend="openpose", weights_dir=str(tmp_path), input_height=96, max_people=2))
    assert backend.name == "openpose"
    frame = np.zeros((192, 256, 3), np.uint8)
    blobs = {1: ((128, 64), (255, 0, 0)), 2: ((192, 64), (0, 255, 0)), 5: ((128, 144), (0, 0, 255))}
    for (x, y), colour in blobs.values():
        cv2.rectangle(frame, (x - 16, y - 16), (x + 15, y + 15), colour, -1)
    people = backend.estimate(frame)
    assert len(people) == 1
    kp = people.keypoints[0]
    assert set(np.flatnonzero(kp[:, 2] > 0)) == set(blobs)
    for joint, ((x, y), _) in blobs.items():
        # Back in frame pixels (the net saw it at half size, through stride-8 maps).
        assert abs(kp[joint, 0] - x) <= 8 and abs(kp[joint, 1] - y) <= 8
    assert len(backend.estimate(np.zeros((100, 300, 3), np.uint8))) == 0
    backend.close()
