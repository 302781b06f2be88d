"""Keypoint-sequence model: a residual dilated temporal convolution net over engine.classify.features rows.

Input float32[B, W, F] (normalised joint positions, velocities, confidences per model frame).
Dilations 1, 2, 4 give a receptive field of most of a 2 s window; global average and max
pooling over time then keep both "what happens overall" and "the strongest moment". Small
(about 60k parameters) so it runs at thousands of windows per second on one core.
"""
from __future__ import annotations

import keras
from keras import layers

from engine.classify.features import N_FEATURES
from trainer.config import TrainConfig

INPUT_KIND = "keypoint_sequence"


def build(config: TrainConfig, n_classes: int, train: object = None) -> keras.Model:
    p = config.params
    filters = int(p.get("filters", 64))
    kernel = int(p.get("kernel", 5))
    dropout = float(p.get("dropout", 0.3))
    noise = float(p.get("input_noise", 0.02))
    inputs = keras.Input((config.window, N_FEATURES), name="features")
    # Training-only jitter on the features; an identity at inference (and in the export).
    x = layers.GaussianNoise(noise)(inputs) if noise > 0 else inputs
    return residual_tcn(inputs, x, n_classes, p, filters, kernel, dropout, "keypoint_tcn")


def residual_tcn(inputs: keras.KerasTensor, x: keras.KerasTensor, n_classes: int, p: dict, filters: int, kernel: int,
                 dropout: float, name: str) -> keras.Model:
    """The dilated residual blocks, pooling and softmax over feature rows `x` (computed from `inputs`)."""
    x = layers.Conv1D(filters, 1, name="embed")(x)
    for dilation in p.get("dilations", [1, 2, 4]):
        y = layers.Conv1D(filters, kernel, padding="same", dilation_rate=int(dilation), use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation("relu")(y)
        y = layers.SpatialDropout1D(dropout)(y)
        x = layers.Add()([x, y])
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)
