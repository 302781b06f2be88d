"""Commands that need the training extra say so in one line when it is absent (issue 13).

The edge is real: a `tensorflow` package first on PYTHONPATH whose import fails, as an
install without the extra (or a broken one) behaves.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_helpers import run_cli


@pytest.fixture()
def without_tensorflow(tmp_path: Path) -> dict[str, str]:
    stand_in = tmp_path / "site" / "tensorflow"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text('raise ImportError("No module named \'tensorflow\' (test stand-in)")\n')
    return {"PYTHONPATH": str(stand_in.parent)}


@pytest.mark.parametrize("command", [
    ("train", "--model", "keypoint_tcn", "--data", "DATA", "--out", "RUN"),
    ("export", "RUN", "-o", "OUT", "--data", "DATA"),
])
def test_training_commands_without_tensorflow_name_the_setup_command(
        tmp_path: Path, without_tensorflow: dict[str, str], command: tuple[str, ...]) -> None:
    data = tmp_path / "d.npz"
    data.write_bytes(b"")  # only its existence matters: the extra is checked before the file is read
    names = {"DATA": str(data), "RUN": str(tmp_path / "run"), "OUT": str(tmp_path / "m.onnx")}
    result = run_cli(*(names.get(a, a) for a in command), timeout=120, env=without_tensorflow)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr  # no traceback
    assert lines[0].startswith(f"error: engine {command[0]} needs the training extra (tensorflow ")
    assert lines[0].endswith("run `bash scripts/setup.sh train`")


def test_prepare_synthetic_needs_no_tensorflow(tmp_path: Path, without_tensorflow: dict[str, str]) -> None:
    data = tmp_path / "s.npz"
    result = run_cli("prepare", "synthetic", "--mhad-only", "--variants", "0", "--out", str(data),
                     timeout=300, env=without_tensorflow)
    assert result.returncode == 0, result.stderr
    assert data.is_file()
