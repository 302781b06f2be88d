from __future__ import annotations

from pathlib import Path

import pytest

from engine.framework.config import build_options
from engine.errors import ConfigError


def test_flags_override_the_file_which_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('source = "camera:0"\npose-workers = 3\nema = 0.2\n')
    options = build_options(str(config), {"pose_workers": 1, "ema": None})
    assert options.source == ("camera:0",) and options.pose_workers == 1 and options.ema == 0.2


@pytest.mark.parametrize("text, message", [
    ("pose_workers = 'two'", "key 'pose_workers' must be int"),
    ("ema = 1.5", "option ema=1.5 is out of range"),
    ("realtime = 1", "key 'realtime' must be bool"),
    ("[run]\nsorce = 'x'", "unknown key 'sorce'"),
])
def test_bad_config_is_refused_with_the_key_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_options(str(config), {})


def test_shipped_configs_load() -> None:
    for path in sorted(Path(__file__).resolve().parents[1].glob("configs/*.toml")):
        build_options(str(path), {})
