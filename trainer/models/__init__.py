"""One module per classifier; each exposes INPUT_KIND and build(config, n_classes, train) -> keras.Model.

Modules import TensorFlow/Keras at the top, so this registry names them as strings and
imports one only when it is trained.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from engine.errors import ConfigError

MODELS: dict[str, str] = {
    "keypoint_tcn": "trainer.models.keypoint_tcn",
    "skeleton_lstm": "trainer.models.skeleton_lstm",
    "skeleton_cnn": "trainer.models.skeleton_cnn",
    "autoencoder": "trainer.models.autoencoder",
    "stgcn": "trainer.models.stgcn",
    "pair_tcn": "trainer.models.pair_tcn",
}


def known_model(name: str) -> str:
    """`name` if it is a model this trainer builds; ConfigError lists the known names. No TensorFlow."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: use one of {', '.join(MODELS)}")
    return name


def model_module(name: str) -> ModuleType:
    """The module that builds model `name` (imports TensorFlow); ConfigError lists the known names."""
    return importlib.import_module(MODELS[known_model(name)])
