"""Where shipped files live (`models/` at the repository root, or ENGINE_MODELS_DIR), and how files are written.

Nothing here imports the rest of the engine: sources, classify and the trainer use it too.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.errors import ConfigError

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


def check_writable(path: str | os.PathLike[str], what: str, flag: str) -> Path:
    """Refuse now, with one line naming `what` and the fix, an output file that could not be written later.

    Called before any process starts: a run that ends after an hour without its video, because
    a folder was misspelled, is worse than a run refused at once. The folder must exist (it is
    not created: a typo would silently make a new tree), be a folder, and take a new file (a
    temporary file is made and removed, which also catches read-only mounts that access(2)
    does not see); an existing target must be a writable file, not a folder.
    """
    target = Path(path)
    folder = target.parent
    shown = str(folder) if str(folder) not in ("", ".") else "."
    if target.is_dir():
        raise ConfigError(f"{what} {target} is a folder: give a file name with {flag}, e.g. {flag} {target / 'out'}")
    if not folder.exists():
        raise ConfigError(f"{what} {target}: folder {shown} does not exist; create it with mkdir -p {shown} "
                          f"or choose another path with {flag}")
    if not folder.is_dir():
        raise ConfigError(f"{what} {target}: {shown} is not a folder; choose a path in a folder with {flag}")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise ConfigError(f"{what} {target} exists and cannot be written; check its permissions or choose "
                              f"another path with {flag}")
        return target  # e.g. /dev/full, a FIFO: written in place
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as exc:
        reason = (exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))).lower()
        raise ConfigError(f"{what} {target}: cannot write in folder {shown} ({reason}); fix its permissions "
                          f"or choose another path with {flag}") from None
    os.close(fd)
    os.unlink(tmp)
    return target
