"""Where shipped files live (`models/` at the repository root, or ENGINE_MODELS_DIR), and how files are written.

Nothing here imports the rest of the engine: sources, classify and the trainer use it too.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_NAME = "default.onnx"


def models_dir() -> Path:
    return Path(os.environ.get("ENGINE_MODELS_DIR") or REPO_ROOT / "models")


def default_model() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def write_atomically(target: str | os.PathLike[str], write: Callable[[str], None], suffix: str = "",
                     mode: int = 0o644) -> Path:
    """Write `target` by calling `write(temporary path)` next to it, then renaming: readers never see half a file.

    The temporary file is in the target's folder (a rename across file systems is not atomic)
    and is removed if `write` fails. `suffix` is for writers that insist on one (np.savez adds
    `.npz` otherwise). mkstemp makes owner-only files; `mode` is what the target gets instead.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
