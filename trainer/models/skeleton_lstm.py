"""Skeleton-image LSTM (the research's best model on MHAD): a small conv encoder per frame, then an LSTM.

Input float32[B, W, S, S, 3] skeleton images in [0, 1]. The encoder is shared over time
(TimeDistributed) and keeps spatial layout (flatten, not global pooling) because where a
limb is drawn is what tells the poses apart.
"""
from __future__ import annotations

import keras
from keras import layers

from trainer.config import TrainConfig

INPUT_KIND = "skeleton_sequence"


def encoder(size: int, filters: list[int], embedding: int) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = inputs
    for f in filters:
        x = layers.Conv2D(int(f), 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(embedding, activation="relu")(x)
    return keras.Model(inputs, x, name="frame_encoder")


def build(config: TrainConfig, n_classes: int, train: object = None) -> keras.Model:
    p = config.params
    size = config.image_size
    units = int(p.get("units", 64))
    dropout = float(p.get("dropout", 0.3))
    inputs = keras.Input((config.window, size, size, 3), name="images")
    frames = layers.TimeDistributed(encoder(size, p.get("filters", [16, 32, 32, 32]), int(p.get("embedding", 96))))(inputs)
    frames = layers.Dropout(dropout)(frames)
    x = layers.LSTM(units)(frames)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="skeleton_lstm")
