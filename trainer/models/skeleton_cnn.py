"""AlexNet-style CNN on single skeleton images; the runtime averages its scores over a window.

Input float32[B, S, S, 3] in [0, 1]. Five convolutions with max pooling and two dense
layers as AlexNet, narrowed and with a stride-2 first layer to suit 64x64 images and a CPU.
"""
from __future__ import annotations

import keras
from keras import layers

from trainer.config import TrainConfig

INPUT_KIND = "skeleton_image"


def build(config: TrainConfig, n_classes: int, train: object = None) -> keras.Model:
    p = config.params
    width = int(p.get("width", 32))
    dense = int(p.get("dense", 256))
    dropout = float(p.get("dropout", 0.5))
    size = config.image_size
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(width, 5, strides=2, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(2 * width, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(3 * width, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(3 * width, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(2 * width, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense // 2, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="skeleton_cnn")
