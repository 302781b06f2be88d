"""`benchmarks/fps.py --quick --json` writes every field the issue names, numbers positive and consistent."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

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


def test_crowd_scene_walks_real_people_in_lanes_of_their_own(vtest_path: Path) -> None:
    """The scene behind `--crowd`: pedestrians cut out of vtest.avi, one per lane, each as tall as
    BlazePose handles, walking (their place and their limbs change from frame to frame)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import crowd_scene

    background, people = crowd_scene.real_people(vtest_path.parent, 4)
    assert len(people) == 4 and all(len(p.images) == crowd_scene.WALK_FRAMES for p in people)
    assert all(crowd_scene.PEDESTRIAN_HEIGHT_PX[0] <= p.height <= crowd_scene.PEDESTRIAN_HEIGHT_PX[1] + 6 for p in people)
    frames = crowd_scene.render(crowd_scene.CrowdOptions(4, fps=10.0, seconds=2.0), background, people)
    assert len(frames) == 20 and frames[0].shape == (480, 640, 3)
    scene = cv2.resize(background, (640, 480), interpolation=cv2.INTER_AREA)
    lanes = crowd_scene.lanes(4, (640, 480))
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in lanes) == 640 * 480  # a grid: no two lanes overlap
    for x0, y0, x1, y1 in lanes:
        spans = []
        for frame in (frames[0], frames[5]):
            person = np.abs(frame[y0:y1, x0:x1].astype(int) - scene[y0:y1, x0:x1]).max(axis=2) > 30
            rows, cols = np.flatnonzero(person.any(axis=1)), np.flatnonzero(person.any(axis=0))
            assert 150 <= rows[-1] - rows[0] + 1 <= 240, (x0, y0, rows[-1] - rows[0] + 1)
            spans.append((cols[0], cols[-1]))
        assert spans[0] != spans[1]  # moved along its lane
    # the loop comes back to where it began: its last frame is next to its first
    assert np.abs(frames[-1].astype(int) - frames[0]).mean() < np.abs(frames[10].astype(int) - frames[0]).mean()


def test_crowd_section_tracks_the_people_in_view(tmp_path: Path, vtest_path: Path) -> None:
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
    cost = row["cpu_ms_per_frame"]  # None only when the run was too short to have a steady part
    assert cost is None or cost["all"] > cost["pose"] > 0, cost
    assert row["mediapipe"] is None or row["mediapipe"]["fps"] > 0
    assert "people" in result.stdout and "MediaPipe" in result.stdout
