"""Training configuration: one TOML file per model in configs/models/, validated in one place.

Top-level keys are the fields of TrainConfig; `[params]` holds the model's own
hyperparameters (each model module reads the ones it knows, with defaults); `[grid]` lists
values to try for any top-level or params key when `engine train --grid` is given.
"""
from __future__ import annotations

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.paths import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs" / "models"


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained; see configs/models/*.toml for commented examples."""

    model: str
    fps: float = 15.0  # model frame rate: every input is resampled to it
    window: int = 0  # model frames per window; 0: from the training clips' lengths (trainer/selection.py)
    stride: int = 0  # model frames between classifications at run time (exported); 0: an eighth of the window
    min_window: int = 0  # model frames before a track's first (partial, padded) window; 0: half a second (exported)
    train_stride: int = 2  # model frames between training windows (more windows, same content)
    image_size: int = 0  # skeleton image side (0 for keypoint models)
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 6  # early stopping on validation loss
    seed: int = 0
    folds: int = 3  # cross-validation folds over the training subjects (each validates once); 0: none, `epochs` on all of them
    threads: int = 2  # TensorFlow intra-op threads
    refit: bool = True  # after choosing, train again on all training subjects for the folds' epoch count
    baseline: bool = True  # also fit the extra-trees baseline and report it beside the model
    unknown_labels: list[str] = field(default_factory=list)  # classes meaning "none of my actions", published as unknown
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = ("fps", "train_stride", "epochs", "batch_size", "learning_rate", "threads")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"training config key {name!r} must be above 0, got {getattr(self, name)!r}")
        for name in ("window", "stride"):
            if getattr(self, name) < 0:
                raise ConfigError(f"training config key {name!r} must be 0 (chosen from the data) or above, got {getattr(self, name)!r}")
        if self.window and not 0 <= self.min_window <= self.window:
            raise ConfigError(f"training config key 'min_window' must be 0 (half a second) or 1 to window ({self.window}), got {self.min_window!r}")
        if self.image_size < 0 or self.patience < 0 or self.folds == 1 or self.folds < 0:
            raise ConfigError("training config keys image_size and patience must be >= 0, folds >= 2 (or 0: no validation)")
        if not isinstance(self.unknown_labels, list) or not all(isinstance(n, str) for n in self.unknown_labels):
            raise ConfigError("training config key 'unknown_labels' must be a list of class names")

    def with_values(self, values: dict[str, Any]) -> "TrainConfig":
        """A copy with top-level or params keys replaced (a grid point)."""
        top = {k: v for k, v in values.items() if k in _FIELDS}
        params = {**self.params, **{k: v for k, v in values.items() if k not in _FIELDS}}
        return dataclasses.replace(self, **top, params=params)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, in a fixed order ([{}] without a grid)."""
        if not self.grid:
            return [{}]
        keys = sorted(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"params", "grid"}
# Keys renamed since: a config that still has one gets a message saying what replaced it.
_RENAMED = {"validation_subjects": "folds (cross-validation folds over the training subjects)"}


def default_config_path(model: str) -> Path:
    return CONFIG_DIR / f"{model}.toml"


def load_config(path: str | Path | None, model: str) -> TrainConfig:
    """Read a training config (the model's default in configs/models/ when path is None)."""
    p = Path(path) if path else default_config_path(model)
    if not p.is_file():
        raise ConfigError(f"training config not found: {p}; pass --config FILE or add configs/models/{model}.toml")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return config_from_dict(raw, model, str(p))


def config_from_dict(raw: dict[str, Any], model: str, where: str = "config") -> TrainConfig:
    raw = dict(raw)
    named = raw.pop("model", model)
    if named != model:
        raise ConfigError(f"{where}: config is for model {named!r} but --model is {model!r}; pass the matching --config")
    params = raw.pop("params", {})
    grid = raw.pop("grid", {})
    for key, replacement in _RENAMED.items():
        if key in raw:
            raise ConfigError(f"{where}: training config key {key!r} is gone; use {replacement}")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown training config key(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}, [params], [grid]")
    if not isinstance(params, dict) or not isinstance(grid, dict):
        raise ConfigError(f"{where}: [params] and [grid] must be tables")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid key {key!r} must be a non-empty list of values")
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    for key, value in raw.items():
        if types[key] == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{where}: training config key {key!r} must be true or false, got {value!r}")
        if types[key] == "int" and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"{where}: training config key {key!r} must be an integer, got {value!r}")
        if types[key] == "float" and not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: training config key {key!r} must be a number, got {value!r}")
        if types[key] == "float":
            raw[key] = float(value)
    return TrainConfig(model=model, params=params, grid=grid, **raw)
