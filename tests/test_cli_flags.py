"""Flags a user types: one name per meaning on every command, spelled out in full (issue 13).

argparse's prefix matching once took `--pose-w` for `--pose-weights`; every engine parser
refuses abbreviations now, with one line naming the command's --help.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.framework.options import parse_options
from engine.framework.stage_options import PoseStageOptions
from pipeline_helpers import run_cli


def test_pose_takes_the_backend_as_pose(messi_path: Path) -> None:
    result = run_cli("pose", str(messi_path), "--pose", "blazepose", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("messi5.jpg: 1 person (blazepose, 548x342)")


@pytest.mark.parametrize("command", [("run", "--duration", "5", "--quiet"), ("pose", "MEDIA")])
def test_an_abbreviated_flag_is_refused_in_one_line(messi_path: Path, command: tuple[str, ...]) -> None:
    argv = [str(messi_path) if a == "MEDIA" else a for a in command]
    result = run_cli(*argv, "--pose-w", "x", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: engine {command[0]}: unrecognized arguments: --pose-w x (see `engine {command[0]} --help`)"]


def test_a_stage_refuses_abbreviations_too() -> None:
    with pytest.raises(SystemExit) as caught:
        parse_options(PoseStageOptions, ["--input", "ipc://a", "--output", "ipc://b", "--pose-w", "x"], "engine stage pose")
    assert caught.value.code == 2


def test_a_stage_started_alone_refuses_abbreviations() -> None:
    result = run_cli("stage", "pose", "--input", "ipc://a", "--output", "ipc://b", "--max-p", "2", timeout=120)
    assert result.returncode == 2
    assert "unrecognized arguments: --max-p 2" in result.stderr


def test_prepare_mhad_uses_the_pose_flags_of_run(tmp_path: Path) -> None:
    """--pose-weights and --pose-workers, as on `engine run`; the root is checked first, so this ends at once."""
    result = run_cli("prepare", "mhad", "--mhad-root", str(tmp_path / "absent"), "--pose", "blazepose",
                     "--pose-weights", str(tmp_path), "--pose-workers", "1", timeout=120)
    assert result.returncode == 2
    assert "MHAD root" in result.stderr and "unrecognized" not in result.stderr
