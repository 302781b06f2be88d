"""Run options: defaults, then a TOML file (`--config`), then CLI flags, validated in one place."""
from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.classify.runtime import ClassifyOptions
from engine.errors import ConfigError
from engine.framework.options import option, same_as
from engine.framework.schema import DEFAULT_PUBLISH
from engine.framework.stage_options import (
    CaptureOptions, ClassifyStageOptions, MqttOptions, PoseStageOptions, RenderOptions, SinkOptions, StageOptions,
)
from engine.paths import default_model


@dataclass(frozen=True)
class RunOptions:
    """Everything `engine run` needs; TOML keys are these names (dashes or underscores), flags their `flag`.

    Options a stage takes are declared once, on that stage's dataclass (stage_options); the
    fields here reuse its flag, help and default (`same_as`).
    """

    source: tuple[str, ...] = same_as(CaptureOptions, "source", default=("synthetic:",), metadata={
        "help": "camera:N, video file, image folder/glob, rtsp/http URL, mhad:S08/A03/R01, synthetic: (default); "
                "repeat for several streams"})
    mhad_root: str | None = same_as(CaptureOptions, "mhad_root")
    pose: str = same_as(PoseStageOptions, "pose", default="auto", metadata={
        "help": "pose backend: auto (default: replay for synthetic sources, else blazepose), replay, blazepose, openpose"})
    pose_workers: int = option(0, flag="--pose-workers", help="pose worker processes (default: one per core)")
    remote_pose_only: bool = option(False, flag="--remote-pose-only",
                                    help="start no pose worker here: every worker is an `engine stage pose` on another "
                                         "host (needs --frames-endpoint and --poses-endpoint on tcp)")
    pose_threads: int = same_as(PoseStageOptions, "pose_threads")
    max_people: int = same_as(PoseStageOptions, "max_people")
    pose_weights: str | None = same_as(PoseStageOptions, "pose_weights")
    replay_file: str | None = same_as(PoseStageOptions, "replay_file")
    model: str = field(default_factory=lambda: str(default_model()), metadata={
        "flag": "--model", "help": "classifier .onnx (default: models/default.onnx)"})
    pair_model: str | None = same_as(ClassifyStageOptions, "pair_model")
    pair_unknown_below: float | None = same_as(ClassifyStageOptions, "pair_unknown_below")
    publish: str = same_as(ClassifyStageOptions, "publish", default=DEFAULT_PUBLISH)
    realtime: bool = same_as(CaptureOptions, "realtime")
    duration: float = option(0.0, flag="--duration", metavar="SECONDS",
                             help="stop after this many seconds (default: when the source ends, never for live sources)")
    quiet: bool = option(False, flag="--quiet", help="no status line and no printed labels")
    print_labels: bool = option(True, flag="--no-print-labels", action="store_false", help="do not print labels")
    ema: float = same_as(ClassifyOptions, "ema")
    unknown_below: float | None = same_as(ClassifyOptions, "unknown_below")
    min_window: float = same_as(ClassifyOptions, "min_window_s")  # seconds; 0: the model's min_window
    classify_threads: int = same_as(ClassifyOptions, "threads")
    reorder_timeout: float = same_as(RenderOptions, "reorder_timeout")
    exit_on_source_loss: bool = same_as(CaptureOptions, "exit_on_source_loss")
    max_restarts: int = option(5, flag="--max-restarts", help="crashes of one stage within 60 s before giving up")
    frames_endpoint: str | None = option(None, flag="--frames-endpoint", metavar="ENDPOINT",
                                         help="tcp endpoint for capture's output, for remote pose workers")
    poses_endpoint: str | None = option(None, flag="--poses-endpoint", metavar="ENDPOINT",
                                        help="tcp endpoint for render's input, for remote pose workers")
    monitor: str | None = same_as(RenderOptions, "monitor", metadata={
        "help": "bind render's monitor PUB (frames, keypoints, tracks) here, e.g. tcp://0.0.0.0:5561 for `engine view` "
                "(default: ipc in the run's folder when a sink or the viewer needs it)"})
    view: str | None = option(None, flag="--view", nargs="?", const="8080", metavar="[HOST:]PORT",
                              help="serve a live web page (video, skeletons, labels, timeline, rates); default 127.0.0.1:8080")
    record: str | None = same_as(SinkOptions, "record")
    labels_out: str | None = same_as(SinkOptions, "labels_out")
    keypoints_out: str | None = same_as(SinkOptions, "keypoints_out")
    curve_keys: str | None = same_as(StageOptions, "curve_keys")
    metrics: str | None = option(None, flag="--metrics", metavar="[HOST:]PORT",
                                 help="serve Prometheus /metrics, /healthz and /readyz here (host 127.0.0.1 unless given)")
    bridge: str | None = same_as(MqttOptions, "to", default=None, metadata={
        "flag": "--bridge", "help": "republish labels to an MQTT broker: mqtt://HOST[:1883]/TOPIC or mqtts://HOST[:8883]/TOPIC "
                                    "(QoS 1, TOPIC/<stream>/<track>; the other MQTT settings: --bridge-*)"})
    bridge_username: str | None = same_as(MqttOptions, "username", metadata={"flag": "--bridge-username"})
    bridge_password_env: str | None = same_as(MqttOptions, "password_env", metadata={"flag": "--bridge-password-env"})
    bridge_tls_ca: str | None = same_as(MqttOptions, "tls_ca", metadata={"flag": "--bridge-tls-ca"})
    bridge_tls_cert: str | None = same_as(MqttOptions, "tls_cert", metadata={"flag": "--bridge-tls-cert"})
    bridge_tls_key: str | None = same_as(MqttOptions, "tls_key", metadata={"flag": "--bridge-tls-key"})
    bridge_buffer: int = same_as(MqttOptions, "buffer", metadata={"flag": "--bridge-buffer"})
    bridge_stream_status: bool = same_as(MqttOptions, "stream_status", metadata={"flag": "--bridge-stream-status"})
    summary: str | None = option(None, flag="--summary", metavar="PATH",
                                 help="write a JSON summary (rates, latency, drops per stage) here at exit")
    debug: bool = False  # `engine --debug`, before the command

    def __post_init__(self) -> None:
        checks = {
            "pose_workers": 0 <= self.pose_workers <= 64,
            "pose_threads": 1 <= self.pose_threads <= 64,
            "max_people": 0 <= self.max_people <= 32,  # 0: by source kind (engine.sources.spec.default_max_people)
            "duration": self.duration >= 0,
            "ema": 0.0 <= self.ema < 1.0,
            "unknown_below": self.unknown_below is None or 0.0 <= self.unknown_below <= 1.0,
            "min_window": 0.0 <= self.min_window <= 3600.0,
            "classify_threads": 1 <= self.classify_threads <= 64,
            "reorder_timeout": 0.05 <= self.reorder_timeout <= 60,
            "max_restarts": 0 <= self.max_restarts <= 1000,
            "source": len(self.source) >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"option {key.replace('_', '-')}={getattr(self, key)!r} is out of range")
        remote = [e for e in (self.frames_endpoint, self.poses_endpoint) if e and e.startswith("tcp://")]
        if self.remote_pose_only and len(remote) < 2:
            raise ConfigError("--remote-pose-only: remote pose workers need --frames-endpoint tcp://HOST:PORT and "
                              "--poses-endpoint tcp://HOST:PORT to connect to")

    def mqtt(self) -> MqttOptions | None:
        """The bridge stage's MQTT options (`--bridge` and `--bridge-*`), or None without --bridge."""
        if self.bridge is None:
            return None
        return MqttOptions(to=self.bridge, username=self.bridge_username, password_env=self.bridge_password_env,
                           tls_ca=self.bridge_tls_ca, tls_cert=self.bridge_tls_cert, tls_key=self.bridge_tls_key,
                           buffer=self.bridge_buffer, stream_status=self.bridge_stream_status)

    def workers(self) -> int:
        """Local pose workers: none with --remote-pose-only, else --pose-workers or one per core."""
        if self.remote_pose_only:
            return 0
        return self.pose_workers or max(1, os.cpu_count() or 1)


_FIELDS = {f.name: f for f in dataclasses.fields(RunOptions)}
_TYPES: dict[str, tuple[type, ...]] = {
    name: {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}.get(str(f.type).split("|")[0].strip(), ())
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
    return float(value) if declared.startswith("float") else value


def config_key(name: str) -> str:
    """A field name as the shipped configs (configs/*.toml) spell it: with hyphens, like the flags."""
    return name.replace("_", "-")


def unknown_key_message(raw_key: str) -> str:
    """`unknown key 'max-peple'; did you mean 'max-people'?`, then every key, spelled as configs/ spell them.

    Matched on the hyphen spelling, so `max_peple` and `max-peple` find the same key.
    """
    known = sorted(config_key(name) for name in _FIELDS)
    close = difflib.get_close_matches(config_key(raw_key), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {raw_key!r}{hint} (known keys: {', '.join(known)})"


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
            raise ConfigError(f"config file {path}: {unknown_key_message(raw_key)}")
        values[key] = _coerce(key, value, f"config file {path}")
    return values


def build_options(config_path: str | None, overrides: dict[str, Any]) -> RunOptions:
    """Defaults < config file < CLI flags (flags left as None do not override)."""
    values = load_config(config_path) if config_path else {}
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, "command line")
    return RunOptions(**values)
