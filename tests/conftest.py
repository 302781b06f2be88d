"""Shared pytest fixtures."""
from __future__ import annotations

# --- real test media (tests/media.py); keep this block self-contained -------------------
import os
from pathlib import Path

import pytest

from media import MediaUnavailable, media_path


def _media(name: str) -> Path:
    """A real photo or clip; skipped where apt cannot fetch it, failed under CI (CI=true)."""
    try:
        return media_path(name)
    except MediaUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"test media {name} unavailable in CI: {exc}")
        pytest.skip(f"test media {name} unavailable: {exc}")


@pytest.fixture(scope="session")
def messi_path() -> Path:
    """OpenCV's messi5.jpg: one footballer in full view, 548x342."""
    return _media("messi5.jpg")


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    """OpenCV's vtest.avi: pedestrians in a mall, 768x576, 795 frames."""
    return _media("vtest.avi")


@pytest.fixture(scope="session")
def basketball_path() -> Path:
    """OpenCV's basketball1.png: players on a court."""
    return _media("basketball1.png")
# --- end of test media ------------------------------------------------------------------


# --- tiny classifiers of the synthetic actions, built once per session (tests/tiny_models.py) --------
def _keypoint_model(factory: pytest.TempPathFactory, name: str, window: int, stride: int) -> Path:
    from engine.sources.synthetic import ACTIONS
    from tiny_models import build_tiny_model

    return build_tiny_model(factory.mktemp("m") / f"{name}.onnx", "keypoint_sequence", list(ACTIONS),
                            window=window, stride=stride, fps=30)


@pytest.fixture(scope="session")
def window_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """keypoint_sequence, window 8, stride 4, at 30 fps: a label every 4 frames once 8 have come."""
    return _keypoint_model(tmp_path_factory, "window", window=8, stride=4)


@pytest.fixture(scope="session")
def per_frame_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """window 1, stride 1: one label per frame, so the labels show which frames arrived, in which order."""
    return _keypoint_model(tmp_path_factory, "per_frame", window=1, stride=1)
