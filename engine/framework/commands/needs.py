"""What a command needs before it starts: the training extra, an existing dataset file.

Checked at the top of a command's `run`, so a missing install or a wrong path is one line
naming the fix instead of a traceback from deep inside trainer/ (or an exit code that
blames the model). Importing this module costs nothing: the checks import inside.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from engine.errors import ConfigError

# Top-level modules of the `train` extra (pyproject.toml), and how to install it.
TRAIN_EXTRA_MODULES: frozenset[str] = frozenset({"tensorflow", "keras", "tf2onnx", "matplotlib", "scipy", "sklearn"})
INSTALL_TRAIN = "bash scripts/setup.sh train"


def missing_extra_error(command: str, module: str, exc: ImportError) -> ConfigError:
    """The one line for a training-extra module that does not import (absent, or broken)."""
    absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == module
    why = "is not installed" if absent else f"does not import: {(str(exc).splitlines() or [''])[0]}"
    return ConfigError(f"engine {command} needs the training extra ({module} {why}): run `{INSTALL_TRAIN}`")


def require_train_extra(command: str, *modules: str) -> None:
    """Import `modules` now (ImportError -> one ConfigError line naming `bash scripts/setup.sh train`)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise missing_extra_error(command, module, exc) from None


def extra_module(exc: ImportError) -> str | None:
    """The training-extra module an ImportError is about, if any (the CLI's safety net for late imports)."""
    top = (exc.name or "").split(".")[0]
    return top if top in TRAIN_EXTRA_MODULES else None


def dataset_file(path: str, flag: str = "--data") -> str:
    """`path` if it is a file; else a source/config error (exit 2) naming it and how to write one."""
    p = Path(path).expanduser()
    if p.is_file():
        return str(p)
    what = "is a folder, not a dataset .npz" if p.is_dir() else "not found"
    raise ConfigError(f"{flag} {path}: dataset file {what}: write one with `engine prepare synthetic --out {path}` "
                      f"(or `engine prepare mhad|penn-action|sbu ... --out {path}`)")
