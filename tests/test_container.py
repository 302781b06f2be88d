"""The container image: built from the Dockerfile, it runs the engine's embedded default, and a
subscriber on the host receives its labels.

The heavy test builds the image with podman (scripts/container.sh: runc, no ulimits, a Debian base
made by debootstrap; run `bash scripts/container.sh setup` once, as root) and compares the same
`engine run` inside and outside the container; it prints its figures as one JSON line. The light
test covers the same path without an image: an engine whose models come from ENGINE_MODELS_DIR
(as in the image, where models/ is copied beside a non-editable install), started away from the
repository, publishing to a subscriber over tcp.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine.framework.schema import DEFAULT_PUBLISH
from pipeline_helpers import REPO, Subscriber, engine_cmd, free_port

SCRIPT = REPO / "scripts" / "container.sh"
TAG = "har-engine:test"
RUN_S = 20  # each run of the comparison: `engine run --duration 20 --quiet --summary s.json`


def publish_endpoint() -> str:
    """The engine's default labels endpoint, on a free port (other programs on a shared machine may hold its port)."""
    parts = urlsplit(DEFAULT_PUBLISH)
    return f"{parts.scheme}://{parts.hostname}:{free_port()}"


def engine_run(cmd: list[str], endpoint: str, timeout: float, **popen: object) -> dict[str, object]:
    """Start `cmd` (an `engine run`), collect labels on `endpoint` from the host; seconds to the first label."""
    subscriber = Subscriber(endpoint)
    subscriber.start()
    subscriber.ready.wait(5)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)  # type: ignore[call-overload]
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    time.sleep(0.3)
    labels = subscriber.stop()
    first = subscriber.times[0] - start if subscriber.times else None
    return {"rc": proc.returncode, "out": out, "err": err, "labels": labels, "first_label_s": first}


def test_the_engine_runs_from_models_elsewhere_and_a_host_subscriber_gets_labels(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models, ignore=shutil.ignore_patterns("*.py", "*.txt", "__pycache__"))
    env = {**os.environ, "ENGINE_MODELS_DIR": str(models)}
    endpoint = publish_endpoint()
    summary = tmp_path / "s.json"
    run = engine_run(engine_cmd("run", "--realtime", "--duration", "5", "--pose-workers", "1", "--quiet",
                                "--publish", endpoint, "--summary", str(summary)),
                     endpoint, 60, cwd=tmp_path, env=env)
    assert run["rc"] == 0, run["err"]
    labels = run["labels"]
    assert isinstance(labels, list) and len(labels) >= 3, run["err"]
    assert json.loads(summary.read_text())["labels"] >= len(labels)
    # the model really came from ENGINE_MODELS_DIR: without it there, the engine refuses, naming the file
    (models / "default.onnx").unlink()
    refused = subprocess.run(engine_cmd("run", "--duration", "1", "--publish", publish_endpoint()),
                             capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert refused.returncode == 3, refused.stderr
    assert str(models / "default.onnx") in refused.stderr


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "podman", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.heavy
def test_the_image_runs_the_embedded_default_and_the_host_gets_its_labels(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("needs root, podman and runc: run `bash scripts/container.sh setup` (as root) first")
    t0 = time.monotonic()
    build = subprocess.run(["bash", str(SCRIPT), "build", TAG], capture_output=True, text=True, timeout=1800, cwd=REPO)
    build_s = time.monotonic() - t0
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    size = int(podman("image", "inspect", "--format", "{{.Size}}", TAG).stdout.strip())

    # what the image is: a non-root user, no pip, the models where ENGINE_MODELS_DIR says
    probe = podman("run", "--rm", "--entrypoint", "sh", TAG, "-c",
                   'id -u; ls "$ENGINE_MODELS_DIR"/default.onnx "$ENGINE_MODELS_DIR"/pose/pose_landmark_full.onnx; '
                   'python -m pip --version >/dev/null 2>&1 && echo pip || echo no-pip')
    assert probe.returncode == 0, probe.stderr
    uid, *listed, pip = probe.stdout.split()
    assert uid != "0" and pip == "no-pip" and len(listed) == 2
    # onnxruntime's telemetry is off: with no HOME to keep its device id in, it would say so
    session = podman("run", "--rm", "-e", "HOME=/nonexistent", "--entrypoint", "python", TAG, "-c",
                     "import os, onnxruntime as ort; ort.InferenceSession(os.environ['ENGINE_MODELS_DIR'] + "
                     "'/default.onnx', providers=['CPUExecutionProvider'])")
    assert session.returncode == 0 and "telemetry" not in session.stderr, session.stderr

    # the same command inside (host network, so the host's subscriber connects) and outside
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image's user writes the summary
    args = ["run", "--duration", str(RUN_S), "--quiet", "--summary"]
    endpoint = publish_endpoint()
    inside = engine_run(["bash", str(SCRIPT), "podman", "run", "--rm", "--network=host", "-v", f"{out}:/out", TAG,
                         *args, "/out/s.json", "--publish", endpoint], endpoint, RUN_S + 120)
    assert inside["rc"] == 0, str(inside["err"])[-3000:]
    endpoint = publish_endpoint()
    outside = engine_run(engine_cmd(*args, str(tmp_path / "s.json"), "--publish", endpoint), endpoint, RUN_S + 120, cwd=REPO)
    assert outside["rc"] == 0, str(outside["err"])[-3000:]
    summaries = {where: json.loads(path.read_text()) for where, path in (("inside", out / "s.json"), ("outside", tmp_path / "s.json"))}
    for where, run in (("inside", inside), ("outside", outside)):
        labels = run["labels"]
        assert isinstance(labels, list) and len(labels) >= 10, where
        assert {label["stream"] for label in labels} == {"synthetic:"}
        assert summaries[where]["labels"] >= len(labels) * 0.9
    figures = {
        "image_mb": round(size / 1e6), "build_s": round(build_s, 1),
        "first_label_s": {"inside": round(inside["first_label_s"], 2), "outside": round(outside["first_label_s"], 2)},  # type: ignore[arg-type]
        "fps": {where: round(s["fps"], 1) for where, s in summaries.items()},
        "labels": {where: len(run["labels"]) for where, run in (("inside", inside), ("outside", outside))},  # type: ignore[arg-type]
    }
    print("container:", json.dumps(figures))
    # the container costs little: on a shared 2-core machine runs vary, so only a gross loss fails
    assert summaries["inside"]["fps"] >= 0.6 * summaries["outside"]["fps"], figures
