"""onnxruntime (1.29+, Linux) keeps a device id under ~/.cache/Microsoft and sends usage events unless
ORT_DISABLE_TELEMETRY is set before its first session. The engine sets it when `engine` or `pose`
is imported; these run the engine's own model loading in a fresh process with an empty HOME, no
XDG_CACHE_HOME (which onnxruntime prefers to HOME/.cache) and none of the variables by which
onnxruntime recognises a CI machine and keeps quiet anyway: without that, both tests pass vacuously in CI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_helpers import REPO

LOADERS = {
    "classifier": "from engine.classify.contract import open_model; from engine.paths import default_model; "
                  "open_model(default_model())",
    "pose": "from pose.blazepose import model_path, session; session(model_path('pose_landmark_full.onnx'), 1)",
}


CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
              "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER")


def load_in_empty_home(home: Path, code: str, **env: str) -> None:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("ORT_", "XDG_")) and k not in CI_MARKERS}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, "HOME": str(home), **env},
                   check=True, capture_output=True, timeout=120)


@pytest.mark.parametrize("what", sorted(LOADERS))
def test_loading_a_model_leaves_no_telemetry_behind(tmp_path: Path, what: str) -> None:
    load_in_empty_home(tmp_path, LOADERS[what])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == []


def test_the_check_would_see_telemetry(tmp_path: Path) -> None:
    """Without the setting, the same load writes onnxruntime's device id: the test above can fail."""
    load_in_empty_home(tmp_path, "import onnxruntime as ort; from engine.paths import default_model; "
                                 "ort.InferenceSession(str(default_model()), providers=['CPUExecutionProvider'])",
                       ORT_DISABLE_TELEMETRY="0")
    assert list(tmp_path.rglob("deviceid")), "onnxruntime no longer writes a device id: drop this check"
