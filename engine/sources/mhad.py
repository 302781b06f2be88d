"""Berkeley MHAD: its action names, ids and folder layout, known here once.

Layout: <root>/Kinect/Kin01/SXX/AYY/RZZ/kin_k01_sXX_aYY_rZZ_color_NNNNN.ppm (640x480, 30 fps).
Used by the `mhad:` source, by `engine prepare mhad` and by the synthetic people, which perform
the same actions under the same ids.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from engine.errors import SourceError

# Berkeley MHAD action order: A01 is index 0.
ACTIONS: tuple[str, ...] = (
    "jumping in place",
    "jumping jacks",
    "bending",
    "punching",
    "waving two hands",
    "waving right hand",
    "clapping",
    "throwing",
    "sit down then stand up",
    "sit down",
    "stand up",
)
FPS = 30.0  # Kinect 1 colour stream
N_SUBJECTS, N_REPETITIONS = 12, 5
ABSENT = {(4, 8, 5)}  # (subject, action, repetition) the real dataset does not have


def parse_ids(text: str, path: str) -> tuple[int, int | None, int | None]:
    """(subject, action or None, repetition or None) of `S08/A03/R01`, `S08/A03` or `S08`."""
    match = re.fullmatch(r"S(\d{2})(?:/A(\d{2})(?:/R(\d{2}))?)?", path.strip("/"))
    if not match:
        raise SourceError(f"source {text!r}: write mhad:S08/A03/R01, mhad:S08/A03 or mhad:S08")
    subject, action, rep = (int(g) if g else None for g in match.groups())
    if not 1 <= subject <= N_SUBJECTS or (action and not 1 <= action <= len(ACTIONS)) or (rep and not 1 <= rep <= N_REPETITIONS):
        raise SourceError(f"source {text!r}: subjects are S01-S12, actions A01-A11, repetitions R01-R05")
    return subject, action, rep


# Where a wrong root came from, and how to fix it: the flag and the config key are one option.
ROOT_FROM_FLAG = "--mhad-root (config key mhad-root)"
FIX_ROOT = "point {where} at the dataset's top folder, the one holding Kinect/"


def kinect_dir(root: str | None, kinect: int = 1) -> Path:
    """`<root>/Kinect/Kin0N`, checked, with the root from the argument or MHAD_ROOT."""
    given = root or os.environ.get("MHAD_ROOT")
    if not given:
        raise SourceError("MHAD root not set: pass --mhad-root DIR or set MHAD_ROOT to the folder that holds Kinect/")
    where = ROOT_FROM_FLAG if root else "MHAD_ROOT"
    top = Path(given).expanduser()
    if not top.exists():
        raise SourceError(f"MHAD root {given} does not exist: {FIX_ROOT.format(where=where)}")
    if not top.is_dir():
        raise SourceError(f"MHAD root {given} is a file, not a folder: {FIX_ROOT.format(where=where)}")
    kin_dir = top / "Kinect" / f"Kin0{kinect}"
    if not kin_dir.is_dir():
        raise SourceError(f"MHAD root {given} has no Kinect/Kin0{kinect} folder: {FIX_ROOT.format(where=where)}")
    return kin_dir


def sequence_id(subject: int, action: int, rep: int) -> str:
    return f"S{subject:02d}/A{action:02d}/R{rep:02d}"


def sequence_dir(kin_dir: Path, subject: int, action: int, rep: int) -> Path:
    return kin_dir / f"S{subject:02d}" / f"A{action:02d}" / f"R{rep:02d}"


def frame_paths(kin_dir: Path, kinect: int, subject: int, action: int, rep: int) -> list[Path]:
    """The sequence's colour frames in order (empty if it has none)."""
    prefix = f"kin_k0{kinect}_s{subject:02d}_a{action:02d}_r{rep:02d}_color_"
    folder = sequence_dir(kin_dir, subject, action, rep)
    return sorted(folder.glob(prefix + "*.ppm"))  # frame numbers are zero-padded


def sequences(text: str, kin_dir: Path, subject: int, action: int | None, rep: int | None) -> list[tuple[int, int, int]]:
    """The (subject, action, repetition) a source names; a single named sequence must exist."""
    actions = [action] if action else list(range(1, len(ACTIONS) + 1))
    reps = [rep] if rep else list(range(1, N_REPETITIONS + 1))
    if action and rep and not sequence_dir(kin_dir, subject, action, rep).is_dir():
        hint = " (S04/A08/R05 is missing from the real dataset)" if (subject, action, rep) in ABSENT else ""
        raise SourceError(f"MHAD sequence {sequence_id(subject, action, rep)} not found: "
                          f"{sequence_dir(kin_dir, subject, action, rep)} does not exist{hint}")
    return [(subject, a, r) for a in actions for r in reps]


def all_sequences() -> list[tuple[int, int, int]]:
    """Every (subject, action, repetition) of the protocol, S01/A01/R01 first."""
    return [(s, a, r) for s in range(1, N_SUBJECTS + 1) for a in range(1, len(ACTIONS) + 1)
            for r in range(1, N_REPETITIONS + 1)]
