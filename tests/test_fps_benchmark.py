"""`benchmarks/fps.py --quick --json` writes every field the issue names, numbers positive and consistent."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline_helpers import REPO


def test_quick_benchmark_json_is_complete_and_consistent(tmp_path: Path) -> None:
    out = tmp_path / "fps.json"
    result = subprocess.run([sys.executable, "benchmarks/fps.py", "--quick", "--json", str(out), "--source", "synthetic:"],
                            cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    for key in ("pose_limit_fps", "engine_fps", "sequential_fps", "latency_ms", "per_stage", "transport_ms", "streams", "machine"):
        assert key in data, key
    assert data["pose_limit_fps"] > 0 and data["engine_fps"] > 0 and data["sequential_fps"] > 0
    lat = data["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert data["transport_ms"]["ipc"] > 0 and data["transport_ms"]["tcp"] > 0
    assert data["machine"]["cores"] >= 1 and data["machine"]["onnxruntime"]
    stages = data["per_stage"]
    source_rate = stages["capture"]["fps"]
    for name, stage in stages.items():
        assert stage["frames"] > 0 and stage["ms_per_frame"] > 0, name
    # Nothing downstream outruns the source; the pose workers together carry every frame once.
    assert stages["classify"]["frames"] <= stages["capture"]["frames"]
    assert stages["classify"]["fps"] <= source_rate * 1.15
    pose_frames = sum(s["frames"] for n, s in stages.items() if n.startswith("pose."))
    assert stages["classify"]["frames"] <= pose_frames <= stages["capture"]["frames"]
    assert set(data["streams"]) >= {"1", "2"} and all(v > 0 for v in data["streams"].values())
    assert data["classifier_windows_per_s"] and all(v > 0 for v in data["classifier_windows_per_s"].values())
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "goals:" in result.stdout


def test_crowd_section_tracks_the_people_in_view(tmp_path: Path) -> None:
    """`--crowd`: two real people (vtest.avi's pedestrians) served live; the engine follows both
    and labels them. No timing is asserted: the figures depend on the machine's load."""
    out = tmp_path / "crowd.json"
    result = subprocess.run([sys.executable, "benchmarks/fps.py", "--crowd", "--quick", "--crowd-people", "2",
                             "--seconds", "6", "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["machine"]["cores"] >= 1 and "vtest.avi" in data["scene"]
    [row] = data["rows"]
    assert row["people"] == 2
    assert row["served_fps"] > 0 and row["pose_fps"] > 0 and row["classify_fps"] > 0
    assert row["labels"] > 0 and row["labels_per_s"] > 0
    assert row["tracks_seen"] >= 2 and row["tracks_at_once"] >= 1, row
    lat = row["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"]
    assert row["lost"] == 0
    assert row["mediapipe"] is None or row["mediapipe"]["fps"] > 0
    assert "people" in result.stdout and "MediaPipe" in result.stdout
