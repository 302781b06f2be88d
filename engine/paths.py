"""Where shipped files live: `models/` at the repository root, or ENGINE_MODELS_DIR."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_NAME = "default.onnx"


def models_dir() -> Path:
    return Path(os.environ.get("ENGINE_MODELS_DIR") or REPO_ROOT / "models")


def default_model() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME
