"""Each stage's options, one frozen dataclass per stage: its parser and the supervisor's argv both come from it.

A stage parses its command line with `parse_options(CaptureOptions, argv, ...)`; the supervisor
builds the same object and starts the stage with `to_argv(options)`. `engine run` takes its
flags from these fields too (`same_as`), so a meaning has one flag name and one default.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.classify.runtime import ClassifyOptions
from engine.framework.options import nested, option

# Frames queued per pose worker (capture's send queue, each worker's receive queue): enough to
# keep a worker busy, few enough that a dying worker takes few frames with it. Live sources use 1.
FRAMES_PER_WORKER = 4
# Frames render holds while one is late when only keypoints travel (small per frame).
REORDER_CAPACITY = 1024
# A recorded stream goes to the pose workers in chunks of this many frames, each chunk to one
# worker that starts it with fresh tracking state (engine.framework.dispatch): about half a
# second, so a re-detection costs little and two to four workers share one stream.
CHUNK_FRAMES = 16
# How far a recorded stream's newest frame sent may run ahead of its oldest frame still at a
# worker: what render may have to hold (below its capacity when whole frames travel).
MAX_AHEAD_FRAMES = 64
# The sink's memory for frames received while its writers catch up.
SINK_BACKLOG_MB = 1024.0
# The viewer's frame rate: what a browser needs to look live, at a small encoding cost.
VIEW_MAX_FPS = 15.0
# Labels the MQTT bridge holds while the broker is away; beyond, the oldest are dropped and counted.
BRIDGE_BUFFER = 10000


@dataclass(frozen=True, kw_only=True)
class StageOptions:
    """What every stage takes: where to report, CURVE keys, its worker index, tracebacks."""

    status: str | None = option(None, flag="--status", help="supervisor's status endpoint (omit when run alone)")
    curve_keys: str | None = option(None, flag="--curve-keys", metavar="DIR",
                                    help="CURVE key folder (engine keys generate DIR): encrypts and authenticates tcp endpoints")
    # Always on the command line: `ps` (and benchmarks/soak.py) tell pose workers apart by it.
    worker: int = option(0, flag="--worker", help="worker index, for status reports", always=True)
    debug: bool = option(False, flag="--debug", help="show tracebacks instead of one-line errors")


@dataclass(frozen=True, kw_only=True)
class CaptureOptions(StageOptions):
    source: tuple[str, ...] = option(flag="--source", help="source string (repeat for several streams)")
    output: str = option(flag="--output", help="endpoint to bind; pose workers connect to it")
    mhad_root: str | None = option(None, flag="--mhad-root", metavar="DIR", help="Berkeley MHAD root (or set MHAD_ROOT)")
    realtime: bool = option(False, flag="--realtime",
                            help="pace recorded sources at their frame rate, dropping frames when behind")
    exit_on_source_loss: bool = option(False, flag="--exit-on-source-loss", help="fail instead of reconnecting")
    chunk: int = option(CHUNK_FRAMES, flag="--chunk",
                        help="recorded streams go to the pose workers in chunks of this many frames, one worker each")
    max_ahead: int = option(MAX_AHEAD_FRAMES, flag="--max-ahead",
                            help="frames a recorded stream may run ahead of its oldest frame still at a pose worker")
    resume: str | None = option(None, flag="--resume",
                                help="JSON {ended: [streams], next: {stream: seq}} from the supervisor after a restart")


@dataclass(frozen=True, kw_only=True)
class PoseStageOptions(StageOptions):
    input: str = option(flag="--input", help="capture's endpoint to connect to")
    output: str = option(flag="--output", help="render's endpoint to connect to")
    pose: str = option("blazepose", flag="--pose", help="pose backend: blazepose, openpose, replay")
    max_people: int = option(0, flag="--max-people",
                             help="people tracked per frame (default 0: 6 for cameras, video files, image folders and "
                                  "streams, 1 for synthetic and mhad sources)")
    pose_threads: int = option(1, flag="--pose-threads", help="inference threads per pose worker")
    pose_weights: str | None = option(None, flag="--pose-weights", metavar="DIR", help="folder with the backend's weight files")
    replay_file: str | None = option(None, flag="--replay-file", metavar="FILE",
                                     help="keypoints file (.npz/.jsonl) for --pose replay")
    forward_frames: bool = option(False, flag="--forward-frames", help="send frames on (for viewers and recorders)")
    hwm: int = option(FRAMES_PER_WORKER, flag="--hwm", help="frames this worker takes at a time (its credit with capture)")
    metrics: str | None = option(None, flag="--metrics", metavar="[HOST:]PORT",
                                 help="serve Prometheus /metrics, /healthz and /readyz here (host 127.0.0.1 unless given)")
    stay: bool = option(False, flag="--stay",
                        help="run alone, keep waiting for the next engine when one ends (under Kubernetes: a restarted "
                             "pipeline finds its workers still there)")


@dataclass(frozen=True, kw_only=True)
class RenderOptions(StageOptions):
    input: str = option(flag="--input", help="endpoint to bind; pose workers connect to it")
    output: str = option(flag="--output", help="classify's endpoint to connect to")
    model: str = option(flag="--model", help="classifier .onnx whose metadata says what to draw")
    reorder_capacity: int = option(REORDER_CAPACITY, flag="--reorder-capacity",
                                   help="frames held while waiting for a late one (keypoints only: small)")
    # Capture announces the frames a dead pose worker held, so this wait is only for a loss nobody
    # announced (a stage restarted elsewhere); a worker starved of CPU for a second must not trip it.
    reorder_timeout: float = option(5.0, flag="--reorder-timeout", metavar="SECONDS",
                                    help="seconds render waits for a missing frame nobody announced lost")
    monitor: str | None = option(None, flag="--monitor", metavar="ENDPOINT",
                                 help="bind a PUB here: frames (when forwarded), keypoints and tracks in order, for viewers and recorders")
    record_output: str | None = option(None, flag="--record-output", metavar="ENDPOINT",
                                       help="bind a PUSH here: the monitor's messages, lossless (a recorder of a recorded source)")


@dataclass(frozen=True, kw_only=True)
class ClassifyStageOptions(StageOptions):
    input: str = option(flag="--input", help="endpoint to bind; render connects to it")
    publish: str = option(flag="--publish", metavar="ENDPOINT", help="labels PUB endpoint")
    model: str = option(flag="--model", help="classifier .onnx")
    pair_model: str | None = option(None, flag="--pair-model", metavar="FILE",
                                    help="also label pairs of people close together with this two-person model (e.g. models/pair_sbu.onnx)")
    pair_unknown_below: float | None = option(None, flag="--pair-unknown-below", metavar="SCORE",
                                              help="pair labels under this score are 'unknown' (default: as --unknown-below)")
    classify: ClassifyOptions = nested(ClassifyOptions)
    subscribers: int = option(0, flag="--subscribers",
                              help="subscribers to labels to wait for (at most a few seconds) before the first label")
    label_subscriptions: int = option(0, flag="--label-subscriptions",
                                      help="subscriptions to labels (anyone's) the previous classifier had: a restarted "
                                           "one waits for as many (at most a few seconds) before its first label")


@dataclass(frozen=True, kw_only=True)
class SinkOptions(StageOptions):
    labels: str = option(flag="--labels", metavar="ENDPOINT", help="the labels PUB endpoint to connect to")
    monitor: str | None = option(None, flag="--monitor", metavar="ENDPOINT",
                                 help="render's monitor endpoint (needed by --record and --keypoints-out)")
    record: str | None = option(None, flag="--record", metavar="PATH",
                                help="write the annotated video (*.mp4 with mp4v, *.avi with MJPG)")
    labels_out: str | None = option(None, flag="--labels-out", metavar="PATH", help="write every label as one JSON object per line")
    keypoints_out: str | None = option(None, flag="--keypoints-out", metavar="PATH",
                                       help="write per-frame keypoints (*.npz or *.jsonl), read back by --pose replay --replay-file")
    lossless: bool = option(False, flag="--lossless",
                            help="--monitor is render's --record-output (PUSH): every frame, slowing the source instead of dropping")
    max_backlog_mb: float = option(SINK_BACKLOG_MB, flag="--max-backlog-mb",
                                   help="MiB of received frames held while the writers catch up")


@dataclass(frozen=True, kw_only=True)
class ViewStageOptions(StageOptions):
    labels: str = option(flag="--labels", metavar="ENDPOINT", help="the labels PUB endpoint to connect to")
    monitor: str | None = option(None, flag="--monitor", metavar="ENDPOINT",
                                 help="render's monitor endpoint (frames, keypoints, tracks)")
    bind: str = option("8080", flag="--bind", metavar="[HOST:]PORT", help="where to serve the page; the host is 127.0.0.1 unless given")
    pose: str = option("", flag="--pose", help="pose backend name, shown on the page")
    model: str = option("", flag="--model", help="classifier path, its name is shown on the page")
    max_fps: float = option(VIEW_MAX_FPS, flag="--max-fps", help="frames sent to browsers per second at most")



@dataclass(frozen=True, kw_only=True)
class MqttOptions:
    """Where and how the bridge publishes labels: `engine bridge` and the bridge stage take these flags."""

    to: str = option(flag="--to", metavar="URL",
                     help="broker and base topic: mqtt://HOST[:1883]/TOPIC, or mqtts://HOST[:8883]/TOPIC for TLS")
    buffer: int = option(BRIDGE_BUFFER, flag="--buffer",
                         help="labels held while the broker is away; beyond, the oldest are dropped and counted")
    client_id: str = option("", flag="--client-id", help="MQTT client id (default engine-bridge-HOST-PID)")
    keepalive: int = option(30, flag="--keepalive", help="MQTT keepalive, seconds")
    username: str | None = option(None, flag="--username", help="MQTT user name")
    password_env: str | None = option(None, flag="--password-env", metavar="VAR",
                                      help="name of the environment variable holding the MQTT password (never printed)")
    tls_ca: str | None = option(None, flag="--tls-ca", metavar="FILE",
                                help="CA certificates to check the broker with (mqtts; default: the system's)")
    tls_cert: str | None = option(None, flag="--tls-cert", metavar="FILE", help="client certificate (with --tls-key)")
    tls_key: str | None = option(None, flag="--tls-key", metavar="FILE", help="client certificate's key")
    tls_insecure: bool = option(False, flag="--tls-insecure",
                                help="do not check the broker's host name against its certificate")
    reconnect_max: float = option(30.0, flag="--reconnect-max",
                                  help="longest wait between reconnection attempts, seconds (back-off from 0.5 s doubles up to it)")
    stream_status: bool = option(False, flag="--stream-status",
                                 help="also publish each stream's status (frames, labels/s, tracks, ended) once a second, "
                                      "retained, on TOPIC/<stream>/status")


@dataclass(frozen=True, kw_only=True)
class BridgeStageOptions(StageOptions):
    """The MQTT bridge as a stage of `engine run --bridge URL`: restarted, watched and counted like the others."""

    labels: str = option(flag="--labels", metavar="ENDPOINT", help="the labels PUB endpoint to connect to")
    mqtt: MqttOptions = nested(MqttOptions)
