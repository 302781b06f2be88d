"""Pose backends behind one interface (pose.base.PoseBackend), chosen by name."""
from __future__ import annotations

import importlib
import os

# Before onnxruntime's first session: no telemetry (device id file, uploads). See engine/__init__.py.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from pose.base import People, PoseBackend, PoseError, PoseOptions

# name -> "module:factory"; backends are imported only when chosen, so a missing optional
# dependency of one backend never breaks another.
BACKENDS: dict[str, str] = {
    "blazepose": "pose.blazepose:BlazePoseBackend",
    "openpose": "pose.openpose:OpenPoseBackend",
    "replay": "pose.replay:ReplayBackend",
}


def create_backend(options: PoseOptions) -> PoseBackend:
    """Build the backend `options.backend` names; raises PoseError naming the accepted ones."""
    target = BACKENDS.get(options.backend)
    if target is None:
        raise PoseError(f"unknown pose backend {options.backend!r}: use one of {', '.join(sorted(BACKENDS))}")
    module_name, factory = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, factory)(options)


__all__ = ["BACKENDS", "People", "PoseBackend", "PoseError", "PoseOptions", "create_backend"]
