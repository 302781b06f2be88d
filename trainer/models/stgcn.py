"""Keypoint-sequence model: a small spatial-temporal graph convolution net (ST-GCN) over the body.

Input float32[B, W, F], the same engine.classify.features rows the keypoint_tcn reads. Inside
the graph each row becomes a [J, C] skeleton (joints in `feature_layout().joints` order) with
three streams per joint, fused early by concatenating channels (C = 7):

- joint: x, y position and presence (ST-GCN, Yan et al., AAAI 2018)
- motion: x, y velocity (the features' frame-to-frame difference)
- bone: position minus the parent joint's position, 0 unless both ends were seen
  (the bone stream of 2s-AGCN, Shi et al., CVPR 2019)

Early fusion rather than 2s-AGCN's late fusion (one net per stream, logits summed): one
backbone costs a third of three, and the speed goal (>= 2,000 windows/s on one onnxruntime
thread) leaves room for one small net only; the streams still enter as separate channels,
so the first layer can weigh them freely.

Graph: the COCO-18 limbs of pose.coco restricted to the feature joints form a tree rooted at
the neck (OpenPose's tree: nose, shoulders and hips hang from the neck; elbows from
shoulders, wrists from elbows, knees from hips, ankles from knees). The adjacency A + I is
symmetric-normalised, D^-1/2 (A + I) D^-1/2, and split into ST-GCN's spatial partitions:
self, inward (towards the neck) and outward. With `adaptive` the aggregation weights start
at these partitions and are trained (the learnable additive mask B of 2s-AGCN).

Each block: 1x1 channel mix then aggregation over the partitions (graph convolution),
BatchNorm, ReLU, a temporal convolution (kernel x 1, optional stride), BatchNorm, a residual
connection, ReLU. Global average and max pooling over frames and joints, softmax "probs".
Only Dense (MatMul), Conv2D, zero padding, Reshape, Permute (Transpose), Concatenate,
Multiply and pooling: everything tf2onnx exports at opset 13+, and no custom layer, so `engine export`
loads model.keras without importing this module.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from engine.classify.features import FeatureLayout, feature_layout
from pose.coco import LIMBS, NECK
from trainer.config import TrainConfig

INPUT_KIND = "keypoint_sequence"
ROOT = NECK  # the tree's root: every limb chain of the body starts at the neck
STREAM_CHANNELS = ("x", "y", "presence", "vx", "vy", "bone_x", "bone_y")
N_PARTITIONS = 3  # self, inward, outward


def body_tree(joints: Sequence[int], limbs: Sequence[tuple[int, int]] = LIMBS, root: int = ROOT) -> tuple[int, ...]:
    """parent[i] = row index of joint i's parent (the root is its own parent).

    Breadth-first from `root` over the limbs between feature joints, so the tree follows
    whatever joints a feature version keeps; a joint the limbs do not reach is its own
    parent (no bone), which keeps the model buildable for any layout.
    """
    index = {joint: i for i, joint in enumerate(joints)}
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(joints))}
    for a, b in limbs:
        if a in index and b in index:
            neighbours[index[a]].append(index[b])
            neighbours[index[b]].append(index[a])
    parent = list(range(len(joints)))
    if root not in index:
        return tuple(parent)
    seen, queue = {index[root]}, deque([index[root]])
    while queue:
        i = queue.popleft()
        for j in neighbours[i]:
            if j not in seen:
                seen.add(j)
                parent[j] = i
                queue.append(j)
    return tuple(parent)


def partitions(parent: Sequence[int]) -> np.ndarray:
    """float32[3, J, J] self, inward and outward parts of D^-1/2 (A + I) D^-1/2.

    Row v, column j: how much joint j feeds joint v. Inward: v is j's parent (messages
    towards the root); outward: j is v's parent. The three parts sum to the symmetric
    normalised adjacency, so the aggregation keeps the scale of its input (spectrum in [-1, 1]).
    """
    n = len(parent)
    adjacency = np.eye(n, dtype=np.float64)
    for child, par in enumerate(parent):
        if child != par:
            adjacency[child, par] = adjacency[par, child] = 1.0
    d = 1.0 / np.sqrt(adjacency.sum(axis=1))
    normalised = adjacency * d[:, None] * d[None, :]
    inward = np.zeros((n, n))
    for child, par in enumerate(parent):
        if child != par:
            inward[par, child] = 1.0
    parts = np.stack([np.eye(n), inward, inward.T]) * normalised[None]
    return parts.astype(np.float32)


def stream_matrices(layout: FeatureLayout, parent: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values float32[F, J*C], mask kernel float32[F, J*C], mask bias float32[J*C]) for the streams.

    Every stream is linear in the feature row (values = row @ kernel) except that a bone
    is only real when both of its joints were seen. Presence is 0/1 in feature version 2,
    so that mask is min(p_joint, p_parent) = relu(p_joint + p_parent - 1): one more fixed
    Dense with a ReLU (the other channels get kernel 0, bias 1, i.e. mask 1).
    """
    j, c = layout.n_joints, len(STREAM_CHANNELS)
    values = np.zeros((layout.n_features, j * c), np.float32)
    mask = np.zeros_like(values)
    bias = np.ones(j * c, np.float32)
    pos, vel, conf = layout.position.start, layout.velocity.start, layout.confidence.start
    xy, seen, vxy, bone = (STREAM_CHANNELS.index(name) for name in ("x", "presence", "vx", "bone_x"))
    for i in range(j):
        col = i * c
        values[conf + i, col + seen] = 1.0
        for axis in range(2):
            values[pos + 2 * i + axis, col + xy + axis] = 1.0
            values[vel + 2 * i + axis, col + vxy + axis] = 1.0
            if parent[i] == i:
                bias[col + bone + axis] = 0.0  # the root has no bone
                continue
            values[pos + 2 * i + axis, col + bone + axis] = 1.0
            values[pos + 2 * parent[i] + axis, col + bone + axis] = -1.0
            mask[conf + i, col + bone + axis] = 1.0
            mask[conf + parent[i], col + bone + axis] = 1.0
            bias[col + bone + axis] = -1.0
    return values, mask, bias


def _fixed_dense(units: int, kernel: np.ndarray, bias: np.ndarray | None, name: str,
                 activation: str | None = None, trainable: bool = False) -> layers.Dense:
    """A Dense whose weights are given (a MatMul in ONNX); frozen unless `trainable`."""
    init_bias = keras.initializers.Constant(bias) if bias is not None else "zeros"
    return layers.Dense(units, use_bias=bias is not None, activation=activation, name=name, trainable=trainable,
                        kernel_initializer=keras.initializers.Constant(kernel), bias_initializer=init_bias)


def skeleton_streams(inputs: keras.KerasTensor, layout: FeatureLayout, window: int, parent: Sequence[int]) -> keras.KerasTensor:
    """float32[B, W, F] feature rows -> float32[B, W, J, 7] joint, motion and bone channels."""
    values, mask, bias = stream_matrices(layout, parent)
    width = values.shape[1]
    raw = _fixed_dense(width, values, None, "stream_values")(inputs)
    seen = _fixed_dense(width, mask, bias, "stream_mask", activation="relu")(inputs)
    streams = layers.Multiply(name="streams_flat")([raw, seen])
    return layers.Reshape((window, layout.n_joints, len(STREAM_CHANNELS)), name="streams")(streams)


def graph_conv(x: keras.KerasTensor, parts: np.ndarray, channels: int, adaptive: bool, name: str) -> keras.KerasTensor:
    """ST-GCN spatial convolution sum_k A_k X W_k on [B, W, J, C] -> [B, W, J, channels].

    Aggregate first (over C input channels, cheaper than over K * channels when C is small),
    as a MatMul on the joint axis, [B, W, C, J] @ [J, K*J], then one 1x1 mix of the C*K
    channels per joint. Only last-two-axes transposes: onnxruntime's generic 5-D transpose
    took half the time of the whole net.
    """
    _, w, j, c = x.shape
    k = parts.shape[0]
    kernel = parts.transpose(2, 0, 1).reshape(j, k * j)  # [j, (k, v)]: out[v] of part k = sum_j A_k[v, j] x[j]
    y = layers.Permute((1, 3, 2), name=f"{name}_cj")(x)  # [B, W, C, J]
    y = _fixed_dense(k * j, kernel, None, f"{name}_graph", trainable=adaptive)(y)  # [B, W, C, K*J]
    y = layers.Reshape((w, c * k, j), name=f"{name}_split")(y)  # [B, W, (C, K), J]
    y = layers.Permute((1, 3, 2), name=f"{name}_jc")(y)  # [B, W, J, (C, K)]
    return layers.Dense(channels, use_bias=False, name=f"{name}_mix")(y)


def st_block(x: keras.KerasTensor, parts: np.ndarray, channels: int, stride: int, kernel: int,
             dropout: float, adaptive: bool, name: str) -> keras.KerasTensor:
    """Graph conv, BN, ReLU, temporal conv (kernel x 1, stride), BN, residual, ReLU (ST-GCN's unit)."""
    y = graph_conv(x, parts, channels, adaptive, name)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu")(y)
    y = layers.ZeroPadding2D(((kernel // 2, (kernel - 1) // 2), (0, 0)), name=f"{name}_tpad")(y)
    y = layers.Conv2D(channels, (kernel, 1), strides=(stride, 1), use_bias=False, name=f"{name}_tconv")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride == 1 and x.shape[-1] == channels:
        shortcut = x
    else:
        # Average over `stride` frames, then a 1x1 conv. Not a strided 1x1 Conv2D: TensorFlow
        # 2.21's oneDNN (CPU) training of that corrupted the heap (free(): invalid size,
        # segfaults) for some batch sizes (17, 19 with 7 input channels: the last batch of an epoch).
        shortcut = layers.AveragePooling2D((stride, 1), padding="same", name=f"{name}_pool")(x) if stride > 1 else x
        shortcut = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_down")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_bn_down")(shortcut)
    y = layers.Activation("relu")(layers.Add()([y, shortcut]))
    return layers.SpatialDropout2D(dropout)(y) if dropout > 0 else y


def build(config: TrainConfig, n_classes: int, train: object = None) -> keras.Model:
    """The ST-GCN for config.window frames of the current feature version (params: see stgcn.toml)."""
    p = config.params
    channels = [int(c) for c in p.get("channels", [32, 48, 64])]
    strides = [int(s) for s in p.get("strides", [2, 2, 1])]
    if len(strides) != len(channels):
        raise ValueError(f"stgcn params: channels {channels} and strides {strides} need one value per block")
    kernel = int(p.get("kernel", 5))
    dropout = float(p.get("dropout", 0.2))
    noise = float(p.get("input_noise", 0.02))
    adaptive = bool(p.get("adaptive", True))

    layout = feature_layout()
    parent = body_tree(layout.joints)
    parts = partitions(parent)
    inputs = keras.Input((config.window, layout.n_features), name="features")
    x = skeleton_streams(inputs, layout, config.window, parent)
    # Training-only jitter on the streams (after the bone mask, so presence stays exact).
    x = layers.GaussianNoise(noise)(x) if noise > 0 else x
    # ST-GCN's data BN: one scale per joint and channel (positions, velocities, bones differ in size).
    x = layers.Reshape((config.window, layout.n_joints * len(STREAM_CHANNELS)))(x)
    x = layers.BatchNormalization(name="data_bn")(x)
    x = layers.Reshape((config.window, layout.n_joints, len(STREAM_CHANNELS)))(x)
    for n, (width, stride) in enumerate(zip(channels, strides), 1):
        x = st_block(x, parts, width, stride, kernel, dropout if n > 1 else 0.0, adaptive, f"block{n}")
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="stgcn")
