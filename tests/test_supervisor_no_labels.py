"""A run that ends with no labels says why on one stderr line, and still exits 0 (the input was read).

Tiny inputs made here: a 3-frame video, a JPEG renamed .mp4, a folder of empty pictures.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from pipeline_helpers import free_port, run_cli

PICTURE = np.full((120, 160, 3), 90, np.uint8)  # an empty room: nobody in it


def run_quiet(source: Path, model: Path, *extra: str) -> tuple[int, list[str]]:
    result = run_cli("run", "--source", str(source), "--model", str(model), "--quiet", "--publish",
                     f"tcp://127.0.0.1:{free_port()}", *extra, timeout=180)
    return result.returncode, result.stderr.strip().splitlines()


def test_a_clip_shorter_than_the_first_window_says_so_and_the_fix(tmp_path: Path, window_model: Path) -> None:
    clip = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    for _ in range(3):
        writer.write(PICTURE)
    writer.release()
    code, lines = run_quiet(clip, window_model)
    assert code == 0
    # window_model: 8 model frames at 30 fps before a first label; 3 frames make one with --min-window 0.10.
    assert lines == [f"no labels: the longest stream of {clip} has 3 frames at 30 fps, fewer than the 8 model window "
                     f"needs for a first label (8 of its frames at 30 fps): use a longer clip, --min-window 0.10 "
                     f"(a first label after 0.10 s), or a model with a shorter window"]


def test_a_picture_renamed_mp4_is_named_as_one_frame(tmp_path: Path, window_model: Path) -> None:
    picture = tmp_path / "photo.jpg"
    cv2.imwrite(str(picture), PICTURE)
    clip = tmp_path / "holiday.mp4"
    shutil.copy(picture, clip)
    code, lines = run_quiet(clip, window_model)
    assert code == 0
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"no labels: the longest stream of {clip} has 1 frame (a picture, not a video?) at ")
    assert lines[0].endswith("use a longer clip, --min-window 0.03 (a first label after 0.03 s), or a model with a shorter window")


def test_pictures_with_nobody_in_them_say_no_person_was_found(tmp_path: Path, window_model: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):  # more than the 8 frames the model needs
        cv2.imwrite(str(folder / f"{i:03d}.png"), PICTURE)
    code, lines = run_quiet(folder, window_model)
    assert code == 0
    assert len(lines) == 1, lines
    assert lines[0] == (f"no labels: no person was found in any of the 12 frames of {folder}: make sure whole "
                        f"people are in view, or try another pose backend (--pose)")
