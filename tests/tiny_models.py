"""Tiny, real classifier files that follow the model contract, built in a test's tmp dir.

`build_tiny_model` writes a small ONNX graph (onnx helper API, symbolic batch dimension)
whose output is a deterministic, input-dependent softmax over `labels`:

- keypoint_sequence: input float32[B, W, 90] (engine.classify.features rows). The graph averages the
  rows over the window and computes `raised` = mean normalised y of the neck minus mean
  normalised y of the two wrists (torso lengths, y down, so > 0 when the wrists are above
  the neck). Logits: labels[0] = +GAIN * raised, labels[1] = -GAIN * raised, every other
  label a constant OTHER_LOGIT. So "hands up" -> labels[0], "hands down" -> labels[1], and
  wrists level with the neck give a near tie (a low top score, for `unknown` tests).
- skeleton_image / skeleton_sequence: the mean of each BGR channel over the image(s), in
  [0, 1]; label j gets logit GAIN * mean of channel j % 3 (a black image is a uniform tie).
- skeleton_pyramid: the same per level; label j reads channel j % 3 of level (j // 3) % 4.

`softmax=False` leaves the logits raw; `graph_batch` fixes the batch dimension. The
`graph_*` arguments build a graph that disagrees with its metadata, `omit` drops
metadata keys and `metadata_overrides` replace metadata values, for the contract tests.
`build_temporal_conv_model` is a ~100k-parameter 1D conv net with random weights, the size
of a typical keypoint classifier, for speed measurements.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.classify.features import FEATURE_VERSION, N_FEATURES, POSITION
from engine.classify.pairs import N_PAIR_FEATURES
from engine.classify.contract import OPTIONAL_KEYS, REQUIRED_KEYS, write_metadata
from pose.coco import L_WRIST, NECK, R_WRIST

GAIN = 8.0
OTHER_LOGIT = -4.0
OPSET = 17
IR_VERSION = 8
_CONTRACT_KEYS = frozenset(REQUIRED_KEYS + OPTIONAL_KEYS)


def build_tiny_model(
    path: str | Path,
    input_kind: str,
    labels: list[str] | tuple[str, ...],
    window: int = 8,
    stride: int = 2,
    fps: float = 30.0,
    image_size: int | None = None,
    *,
    omit: tuple[str, ...] = (),
    graph_window: int | None = None,
    graph_image_size: int | None = None,
    graph_features: int | None = None,
    graph_batch: int | str = "batch",
    softmax: bool = True,
    metadata: dict[str, Any] | None = None,
    **metadata_overrides: Any,
) -> Path:
    """Write a contract-conforming tiny model (see module doc for what it computes); returns its path.

    metadata_overrides: contract keys to set instead of the computed ones (e.g. trained_on,
    metrics, feature_version, stride="x"); a value None removes the key. `metadata` does the
    same for any key, including those named like parameters (labels, input_kind, window).
    """
    path = Path(path)
    labels = list(labels)
    if image_size is None:
        image_size = 0 if input_kind in ("keypoint_sequence", "pair") else 16
    gw = graph_window if graph_window is not None else window
    gs = graph_image_size if graph_image_size is not None else image_size
    gf = graph_features if graph_features is not None else N_PAIR_FEATURES if input_kind == "pair" else N_FEATURES
    c, b = len(labels), graph_batch

    if input_kind in ("keypoint_sequence", "pair"):  # pair: the same graph over engine.classify.pairs rows
        graph = _keypoint_graph(gw, gf, c, b)
    elif input_kind == "skeleton_image":
        graph = _image_graph([("image", [b, gs, gs, 3])], [1, 2], c, b)
    elif input_kind == "skeleton_sequence":
        graph = _image_graph([("images", [b, gw, gs, gs, 3])], [1, 2, 3], c, b)
    elif input_kind == "skeleton_pyramid":
        levels = [(f"image_{gs >> i}", [b, gs >> i, gs >> i, 3]) for i in range(4)]
        graph = _image_graph(levels, [1, 2], c, b)
    else:
        raise ValueError(f"unknown input_kind {input_kind!r}")
    if not softmax:  # raw logits out, for the runtime's own softmax
        graph.node.pop()
        graph.node[-1].output[0] = "probs"

    fields: dict[str, Any] = {
        "labels": labels,
        "input_kind": input_kind,
        "image_size": image_size,
        "window": window,
        "stride": stride,
        "fps": fps,
        "trained_on": "tests/tiny_models.py (fixed weights, not trained)",
        "metrics": {},
    }
    if input_kind == "keypoint_sequence":
        fields["feature_version"] = FEATURE_VERSION
    fields.update(metadata_overrides)
    fields.update(metadata or {})
    fields = {k: v for k, v in fields.items() if v is not None and k not in omit}
    return _save(graph, fields, path)


def build_temporal_conv_model(
    path: str | Path,
    labels: list[str] | tuple[str, ...],
    window: int = 30,
    stride: int = 5,
    fps: float = 30.0,
    channels: tuple[int, int, int] = (64, 96, 128),
    seed: int = 0,
) -> Path:
    """A keypoint_sequence 1D temporal conv net (3 conv + ReLU, global average pool, dense, softmax).

    With the default channels it has about 98k parameters; weights are random (He init).
    """
    rng = np.random.default_rng(seed)
    inits: list[TensorProto] = []
    nodes = [helper.make_node("Transpose", ["x"], ["t0"], perm=[0, 2, 1])]  # [B, F, W]
    previous, name = N_FEATURES, "t0"
    for i, (out_ch, k) in enumerate(zip(channels, (5, 5, 3))):
        w = rng.normal(0, np.sqrt(2.0 / (previous * k)), (out_ch, previous, k)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(out_ch, np.float32), f"b{i}")]
        nodes += [
            helper.make_node("Conv", [name, f"w{i}", f"b{i}"], [f"c{i}"], pads=[k // 2, k // 2]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        previous, name = out_ch, f"r{i}"
    c = len(labels)
    dense = rng.normal(0, np.sqrt(1.0 / previous), (previous, c)).astype(np.float32)
    inits += [numpy_helper.from_array(dense, "dense"), numpy_helper.from_array(np.zeros(c, np.float32), "dense_b")]
    nodes += [
        helper.make_node("ReduceMean", [name], ["pooled"], axes=[2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "dense"], ["logits0"]),
        helper.make_node("Add", ["logits0", "dense_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "temporal_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", window, N_FEATURES])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", c])],
        initializer=inits,
    )
    fields = {
        "labels": list(labels),
        "input_kind": "keypoint_sequence",
        "image_size": 0,
        "window": window,
        "stride": stride,
        "fps": fps,
        "trained_on": f"tests/tiny_models.py build_temporal_conv_model (random weights, seed {seed})",
        "metrics": {},
        "feature_version": FEATURE_VERSION,
    }
    return _save(graph, fields, Path(path))


def parameter_count(path: str | Path) -> int:
    return sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer)


def raised_wrists_weights(n_features: int, n_classes: int) -> np.ndarray:
    """float32[F, C]: the keypoint tiny model's dense weights (applied to window-mean features)."""
    weights = np.zeros((n_features, n_classes), np.float32)
    y = lambda joint: POSITION.start + 2 * joint + 1  # noqa: E731
    raised = np.zeros(n_features, np.float32)
    if n_features >= POSITION.stop:
        raised[y(NECK)] = 1.0
        raised[y(R_WRIST)] = -0.5
        raised[y(L_WRIST)] = -0.5
    weights[:, 0] = GAIN * raised
    if n_classes > 1:
        weights[:, 1] = -GAIN * raised
    return weights


def _keypoint_graph(window: int, n_features: int, n_classes: int, batch: int | str) -> onnx.GraphProto:
    bias = np.full(n_classes, OTHER_LOGIT, np.float32)
    bias[:2] = 0.0
    inits = [
        numpy_helper.from_array(raised_wrists_weights(n_features, n_classes), "weights"),
        numpy_helper.from_array(bias, "bias"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["features"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["pooled", "weights"], ["logits0"]),
        helper.make_node("Add", ["logits0", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    return helper.make_graph(
        nodes,
        "tiny_keypoint",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, window, n_features])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, n_classes])],
        initializer=inits,
    )


def _image_graph(inputs: list[tuple[str, list[Any]]], axes: list[int], n_classes: int, batch: int | str) -> onnx.GraphProto:
    """Per input, the channel means [B, 3]; concatenated; label j reads one (level, channel)."""
    nodes, means = [], []
    for name, _ in inputs:
        nodes.append(helper.make_node("ReduceMean", [name], [f"{name}_mean"], axes=axes, keepdims=0))
        means.append(f"{name}_mean")
    if len(means) > 1:
        nodes.append(helper.make_node("Concat", means, ["pooled"], axis=1))
        pooled = "pooled"
    else:
        pooled = means[0]
    n_in = 3 * len(inputs)
    weights = np.zeros((n_in, n_classes), np.float32)
    for j in range(n_classes):
        weights[3 * ((j // 3) % len(inputs)) + j % 3, j] = GAIN
    nodes += [
        helper.make_node("MatMul", [pooled, "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    return helper.make_graph(
        nodes,
        "tiny_image",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, n_classes])],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )


def _save(graph: onnx.GraphProto, fields: dict[str, Any], path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tests.tiny_models")
    model.ir_version = IR_VERSION
    # write_metadata refuses unknown keys; the tests also need free-form values, so raw strings pass through.
    write_metadata(model, {k: v for k, v in fields.items() if k in _CONTRACT_KEYS})
    for key, value in fields.items():
        if key not in _CONTRACT_KEYS:
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
