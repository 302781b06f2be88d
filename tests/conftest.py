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
