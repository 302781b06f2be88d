"""Bad input: one line naming the thing and the fix, a non-zero exit, no traceback.

Each run is bounded by --duration: a run that failed to refuse its input ends with code 0 after
it, and the exact exit code asserted catches that (how fast a refusal comes is no test's concern)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.sources.synthetic import ACTIONS
from pipeline_helpers import run_cli, taken_port, write_mhad_fixture
from tiny_models import build_tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("m") / "m.onnx", "keypoint_sequence", list(ACTIONS), window=8, stride=4)


def run_error(*args: str, env: dict | None = None) -> tuple[int, str]:
    result = run_cli("run", "--quiet", "--duration", "5", *args, timeout=120, env=env)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("error: ")
    return result.returncode, lines[0][len("error: "):]


def test_absent_camera(model: Path) -> None:
    code, msg = run_error("--source", "camera:7", "--model", str(model))
    assert code == 2
    assert msg == "camera 7 not found: /dev/video7 does not exist (list cameras with `ls /dev/video*`, or run --source synthetic:)"


def test_mhad_root_unset(model: Path) -> None:
    code, msg = run_error("--source", "mhad:S08/A03/R01", "--model", str(model), env={"MHAD_ROOT": ""})
    assert code == 2
    assert msg == "MHAD root not set: pass --mhad-root DIR or set MHAD_ROOT to the folder that holds Kinect/"


def test_mhad_root_wrong(tmp_path: Path, model: Path) -> None:
    code, msg = run_error("--source", "mhad:S08/A03/R01", "--mhad-root", str(tmp_path), "--model", str(model))
    assert code == 2
    assert msg == (f"MHAD root {tmp_path} has no Kinect/Kin01 folder: point --mhad-root (config key mhad-root) "
                   "at the dataset's top folder, the one holding Kinect/")


@pytest.mark.parametrize("how", ["flag", "config", "env"])
def test_mhad_root_absent_is_named_with_its_fix(tmp_path: Path, model: Path, how: str) -> None:
    """A root that does not exist is said to not exist, naming where it was given (issue 13)."""
    root = tmp_path / "no-such-root"
    args, env, where = ["--mhad-root", str(root)], {"MHAD_ROOT": ""}, "--mhad-root (config key mhad-root)"
    if how == "config":
        config = tmp_path / "c.toml"
        config.write_text(f'mhad-root = "{root}"\n')
        args = ["--config", str(config)]
    elif how == "env":
        args, env, where = [], {"MHAD_ROOT": str(root)}, "MHAD_ROOT"
    code, msg = run_error("--source", "mhad:S08/A03/R01", *args, "--model", str(model), env=env)
    assert code == 2
    assert msg == f"MHAD root {root} does not exist: point {where} at the dataset's top folder, the one holding Kinect/"


def test_prepare_mhad_with_an_absent_root_says_so(tmp_path: Path) -> None:
    root = tmp_path / "no-such-root"
    result = run_cli("prepare", "mhad", "--mhad-root", str(root), "--out", str(tmp_path / "m.npz"), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: MHAD root {root} does not exist: point --mhad-root (config key mhad-root) "
                                     "at the dataset's top folder, the one holding Kinect/")


@pytest.mark.parametrize("command", [
    ("evaluate", "--model", "MODEL", "--data", "DATA"),
    ("train", "--model", "keypoint_tcn", "--data", "DATA", "--out", "RUN"),
    ("export", "RUN", "-o", "OUT", "--data", "DATA"),
])
def test_a_missing_dataset_file_is_an_input_error(tmp_path: Path, model: Path, command: tuple[str, ...]) -> None:
    """Exit 2 (source or config) naming the file and how to write one, not 3 (the model's code)."""
    data = tmp_path / "nothing-here.npz"
    names = {"MODEL": str(model), "DATA": str(data), "RUN": str(tmp_path / "run"), "OUT": str(tmp_path / "m.onnx")}
    result = run_cli(*(names.get(a, a) for a in command), timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert lines == [f"error: --data {data}: dataset file not found: write one with `engine prepare synthetic --out {data}` "
                     f"(or `engine prepare mhad|penn-action|sbu ... --out {data}`)"]


def test_mhad_sequence_missing(tmp_path: Path, model: Path) -> None:
    root = write_mhad_fixture(tmp_path / "mhad", {(4, 8, 4): 3})
    code, msg = run_error("--source", "mhad:S04/A08/R05", "--mhad-root", str(root), "--model", str(model))
    assert code == 2
    seq_dir = root / "Kinect" / "Kin01" / "S04" / "A08" / "R05"
    assert msg == f"MHAD sequence S04/A08/R05 not found: {seq_dir} does not exist (S04/A08/R05 is missing from the real dataset)"


def test_unreadable_video(tmp_path: Path, model: Path) -> None:
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"this is not a video" * 100)
    code, msg = run_error("--source", str(video), "--model", str(model))
    assert code == 2
    assert msg == f"video {video} cannot be opened: not a video OpenCV can decode (try converting it to mp4)"


def test_empty_folder(tmp_path: Path, model: Path) -> None:
    code, msg = run_error("--source", str(tmp_path), "--model", str(model))
    assert code == 2
    assert msg.startswith(f"folder {tmp_path} holds no images (") and msg.endswith("point --source at a folder of frames")


def test_unknown_scheme_lists_accepted_forms(model: Path) -> None:
    code, msg = run_error("--source", "webcam:0", "--model", str(model))
    assert code == 2
    assert msg.startswith("unknown source scheme 'webcam:': use one of camera:N")
    for form in ("rtsp://", "mhad:SXX", "synthetic:"):
        assert form in msg


def test_missing_model_file(tmp_path: Path) -> None:
    code, msg = run_error("--model", str(tmp_path / "nope.onnx"))
    assert code == 3
    assert str(tmp_path / "nope.onnx") in msg and "not found" in msg


def test_model_missing_metadata_key_is_named(tmp_path: Path) -> None:
    broken = build_tiny_model(tmp_path / "broken.onnx", "keypoint_sequence", list(ACTIONS), omit=("window",))
    code, msg = run_error("--model", str(broken))
    assert code == 3
    assert msg.startswith(f"{broken}: model metadata key 'window' is missing; ")


def test_port_already_in_use(model: Path) -> None:
    with taken_port() as port:
        code, msg = run_error("--model", str(model), "--publish", f"tcp://127.0.0.1:{port}")
    assert code == 4
    assert msg == f"labels publisher address tcp://127.0.0.1:{port} is already in use: stop the program using it or choose another port"


def test_config_unknown_key_is_named(tmp_path: Path, model: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('pose_workerz = 2\n')
    code, msg = run_error("--config", str(config), "--model", str(model))
    assert code == 2
    assert msg.startswith(f"config file {config}: unknown key 'pose_workerz'")
