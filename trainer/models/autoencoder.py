"""Multi-scale convolutional autoencoder classifier (the research's third model).

Four encoders, one per pyramid level (S, S/2, S/4, S/8 skeleton images of the same frame),
are first trained as autoencoders (reconstruct the image), then joined: their codes are
concatenated and a dense head classifies. Inputs are four float32[B, s, s, 3] in [0, 1],
largest first; the runtime averages per-image scores over a window.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from trainer.batches import Batches
from trainer.config import TrainConfig

INPUT_KIND = "skeleton_pyramid"


def _encoder(size: int, code: int, width: int) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = inputs
    s = size
    while s > 4:
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
        s //= 2
    x = layers.Flatten()(x)
    x = layers.Dense(code, activation="relu")(x)
    return keras.Model(inputs, x, name=f"encoder_{size}")


def _decoder(size: int, code: int, width: int) -> keras.Model:
    inputs = keras.Input((code,))
    s = min(size, 4)
    x = layers.Dense(s * s * width, activation="relu")(inputs)
    x = layers.Reshape((s, s, width))(x)
    while s < size:
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
        s *= 2
    x = layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, x, name=f"decoder_{size}")


def pretrain(encoder: keras.Model, size: int, images: np.ndarray, config: TrainConfig) -> None:
    """Train `encoder` as the front half of an autoencoder on uint8 images [N, s, s, 3]."""
    p = config.params
    code = encoder.output.shape[-1]
    auto = keras.Sequential([encoder, _decoder(size, code, int(p.get("width", 32)))], name=f"autoencoder_{size}")
    auto.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")

    def make(rows: np.ndarray) -> list[np.ndarray]:
        return [images[rows].astype(np.float32) / np.float32(255.0)]

    def target(rows: np.ndarray) -> np.ndarray:
        return make(rows)[0]

    feed = Batches(make, target, len(images), config.batch_size, shuffle=True, seed=config.seed)
    auto.fit(feed, epochs=int(p.get("pretrain_epochs", 3)), verbose=2)


def build(config: TrainConfig, n_classes: int, train: object = None) -> keras.Model:
    """The classifier; with `train` (a trainer.windows.WindowSet) its encoders are pretrained first."""
    p = config.params
    code = int(p.get("code", 64))
    width = int(p.get("width", 32))
    dropout = float(p.get("dropout", 0.4))
    sizes = [config.image_size >> i for i in range(4)]
    inputs, codes = [], []
    for size in sizes:
        encoder = _encoder(size, code, width)
        if train is not None and int(p.get("pretrain_epochs", 3)) > 0:
            pretrain(encoder, size, train.frames[f"image_{size}"], config)
        encoder.trainable = not bool(p.get("freeze_encoders", False))
        image = keras.Input((size, size, 3), name=f"image_{size}")
        inputs.append(image)
        codes.append(encoder(image))
    x = layers.Concatenate()(codes)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(p.get("dense", 128)), activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="autoencoder")
