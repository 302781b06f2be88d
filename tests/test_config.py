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


@pytest.mark.parametrize("key", ["max-peple", "max_peple"])
def test_a_config_typo_gets_the_closest_key_as_configs_spell_it(tmp_path: Path, key: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"{key} = 2\n")
    with pytest.raises(ConfigError) as caught:
        build_options(str(config), {})
    message = str(caught.value)
    assert f"unknown key {key!r}; did you mean 'max-people'?" in message
    assert "pose-workers" in message and "pose_workers" not in message  # the known keys, hyphenated like configs/


def test_a_key_like_no_other_gets_no_guess(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("zzzzzz = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'zzzzzz' \\(known keys: "):
        build_options(str(config), {})
