"""Run options: defaults, then a TOML file (`--config`), then CLI flags, validated in one place."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.paths import default_model
from engine.framework.schema import DEFAULT_PUBLISH


@dataclass(frozen=True)
class RunOptions:
    """Everything `engine run` needs; TOML keys and CLI flags use these names (dashes or underscores)."""

    source: tuple[str, ...] = ("synthetic:",)
    mhad_root: str | None = None
    pose: str = "auto"
    pose_workers: int = 0  # 0: one per core
    pose_threads: int = 1
    max_people: int = 1
    pose_weights: str | None = None
    replay_file: str | None = None
    model: str = field(default_factory=lambda: str(default_model()))
    publish: str = DEFAULT_PUBLISH
    realtime: bool = False
    duration: float = 0.0  # 0: until the source ends (or forever for live sources)
    quiet: bool = False
    print_labels: bool = True
    ema: float = 0.5
    unknown_below: float = 0.0
    min_window: float = 0.0  # seconds to a track's first label (a padded partial window); 0: the model's min_window
    classify_threads: int = 1
    reorder_timeout: float = 1.0
    exit_on_source_loss: bool = False
    max_restarts: int = 5
    frames_endpoint: str | None = None  # expose capture's output (tcp) so remote pose workers can join
    poses_endpoint: str | None = None  # expose render's input (tcp) for remote pose workers
    monitor: str | None = None  # render's PUB of ordered frames + keypoints (default: ipc in the run dir when a sink needs it)
    view: str | None = None  # [HOST:]PORT of the web viewer
    record: str | None = None  # annotated video path
    labels_out: str | None = None  # JSONL of every published label
    keypoints_out: str | None = None  # .npz or .jsonl keypoints file
    curve_keys: str | None = None  # CURVE key folder: encrypt and authenticate tcp endpoints
    summary: str | None = None  # JSON file written at exit: rates, latency, drops, per stage
    debug: bool = False

    def __post_init__(self) -> None:
        checks = {
            "pose_workers": 0 <= self.pose_workers <= 64,
            "pose_threads": 1 <= self.pose_threads <= 64,
            "max_people": 1 <= self.max_people <= 32,
            "duration": self.duration >= 0,
            "ema": 0.0 <= self.ema < 1.0,
            "unknown_below": 0.0 <= self.unknown_below <= 1.0,
            "min_window": 0.0 <= self.min_window <= 3600.0,
            "classify_threads": 1 <= self.classify_threads <= 64,
            "reorder_timeout": 0.05 <= self.reorder_timeout <= 60,
            "max_restarts": 0 <= self.max_restarts <= 1000,
            "source": len(self.source) >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"option {key.replace('_', '-')}={getattr(self, key)!r} is out of range")

    def workers(self) -> int:
        return self.pose_workers or max(1, os.cpu_count() or 1)


_FIELDS = {f.name: f for f in dataclasses.fields(RunOptions)}
_TYPES: dict[str, tuple[type, ...]] = {
    name: {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}.get(str(f.type), ())
    for name, f in _FIELDS.items()
}


def _coerce(key: str, value: Any, where: str) -> Any:
    if key == "source":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{where}: key 'source' must be a string or a list of strings")
        return tuple(values)
    declared = str(_FIELDS[key].type)
    if value is None and "None" in declared:
        return None
    if "str" in declared:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: key {key!r} must be a string, got {type(value).__name__}")
        return value
    allowed = _TYPES[key]
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        raise ConfigError(f"{where}: key {key!r} must be {declared}, got {type(value).__name__} {value!r}")
    return float(value) if declared == "float" else value


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML run config (top-level keys, or a [run] table); refuses unknown keys by name."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: check the path (examples in configs/)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    data = data.get("run", data)
    values = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key not in _FIELDS:
            raise ConfigError(f"config file {path}: unknown key {raw_key!r}; known keys: {', '.join(sorted(_FIELDS))}")
        values[key] = _coerce(key, value, f"config file {path}")
    return values


def build_options(config_path: str | None, overrides: dict[str, Any]) -> RunOptions:
    """Defaults < config file < CLI flags (flags left as None do not override)."""
    values = load_config(config_path) if config_path else {}
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, "command line")
    return RunOptions(**values)
