"""Pair model: a residual dilated temporal convolution net over two people's rows of engine.classify.pairs.

Input float32[B, W, F] (both people's canonical positions, velocities, presence, and the
distances between their contact joints, per model frame). The same shape of network as
keypoint_tcn (dilations 1, 2, 4; average and max pooling over time), narrower by default:
SBU has 282 pairs, and the classify stage runs one window per pair of people in view.
"""
from __future__ import annotations

import keras
from keras import layers

from engine.classify.pairs import N_PAIR_FEATURES
from trainer.config import TrainConfig
from trainer.models.keypoint_tcn import residual_tcn

INPUT_KIND = "pair"


def build(config: TrainConfig, n_classes: int, train: object = None) -> keras.Model:
    p = config.params
    filters = int(p.get("filters", 48))
    kernel = int(p.get("kernel", 3))
    dropout = float(p.get("dropout", 0.3))
    noise = float(p.get("input_noise", 0.02))
    inputs = keras.Input((config.window, N_PAIR_FEATURES), name="features")
    # Training-only jitter on the features; an identity at inference (and in the export).
    x = layers.GaussianNoise(noise)(inputs) if noise > 0 else inputs
    x = layers.Dropout(float(p.get("feature_dropout", 0.1)))(x)
    return residual_tcn(inputs, x, n_classes, p, filters, kernel, dropout, "pair_tcn")
