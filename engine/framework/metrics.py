"""Prometheus metrics and health endpoints (`--metrics HOST:PORT`) for `engine run` and `engine stage`.

prometheus_client is imported only here, and this module only when `--metrics` is given, so
`engine --help` stays light. Each process serves a registry of its own (never the global one)
from an http.server on a daemon thread:

- `/metrics`: the Prometheus text format;
- `/healthz`: 200 while the process's loop is alive (the supervisor: 503 when a stage hangs or the run fails);
- `/readyz`: 200 once the process can work (the supervisor: every stage reported; a pose worker: backend
  loaded and the engine heard).

Figures are read at scrape time from a snapshot the owning loop publishes (`Snapshot.set`), so
the HTTP thread never walks the loop's own dictionaries.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.errors import TransportError
from engine.framework.endpoints import parse_host_port

PREFIX = "har_engine"
# The loop is dead (for /healthz) when it has not ticked for this long.
LOOP_STALL_S = 5.0
# Capture-to-label latency buckets, seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)

# name -> (kind, help); per-stage values carry labels stage (and worker for pose).
STAGE_METRICS: dict[str, tuple[str, str]] = {
    "frames_total": ("counter", "frames a stage handled, across its restarts"),
    "fps": ("gauge", "a stage's frames per second over the last few seconds (0 while it is silent)"),
    "busy_seconds_total": ("counter", "seconds a stage spent working on frames (its current incarnation)"),
    "ms_per_frame": ("gauge", "a stage's mean busy milliseconds per frame"),
    "malformed_total": ("counter", "messages a stage dropped as malformed"),
    "restarts_total": ("counter", "times the supervisor restarted a stage"),
    "hangs_total": ("counter", "times the supervisor killed a stage that sent no heartbeat"),
    "up": ("gauge", "1 while a stage's process reports, 0 while it is silent or not started"),
}
RUN_METRICS: dict[str, tuple[str, str]] = {
    "queue_depth": ("gauge", "frames render holds while it restores order"),
    "dropped_total": ("counter", "frames a live capture skipped because pose was busy"),
    "lost_total": ("counter", "frames a stage held when it died"),
    "labels_total": ("counter", "labels the supervisor received as a subscriber"),
    "label_subscriptions": ("gauge", "subscriptions to labels the classifier hears, anyone's (the supervisor's included)"),
    "malformed_status_total": ("counter", "status reports the supervisor dropped"),
    # with --bridge only
    "mqtt_connected": ("gauge", "1 while the MQTT bridge is connected to its broker"),
    "mqtt_labels_total": ("counter", "labels the MQTT bridge received, published, had acknowledged and dropped (outcome)"),
    "mqtt_buffered": ("gauge", "labels the MQTT bridge holds for a broker that is away"),
    "mqtt_outages_total": ("counter", "times the MQTT broker went away"),
}


def parse_metrics_bind(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'9100', ':9100', 'HOST:9100' or '[::1]:9100' -> (host, port); ConfigError (exit 2) otherwise."""
    return parse_host_port(text, "--metrics", 9100, default_host)


class Snapshot:
    """The figures a loop last published: {metric name: [(labels dict, value), ...]}; replaced whole."""

    def __init__(self, kinds: dict[str, tuple[str, str]]) -> None:
        self.kinds = kinds
        self.values: dict[str, list[tuple[dict, float]]] = {}

    def set(self, values: dict[str, list[tuple[dict, float]]]) -> None:
        self.values = values  # one reference swap: the scraping thread sees the old or the new map

    def collect(self) -> Iterable:
        values = self.values
        for name, (kind, help_text) in self.kinds.items():
            samples = values.get(name, [])
            label_names = sorted({k for labels, _ in samples for k in labels})
            full = f"{PREFIX}_{name.removesuffix('_total')}" if kind == "counter" else f"{PREFIX}_{name}"
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(full, help_text, labels=label_names)
            for labels, value in samples:
                family.add_metric([str(labels.get(k, "")) for k in label_names], float(value))
            yield family


class MetricsServer:
    """A registry served on HOST:PORT with /metrics, /healthz and /readyz, on a daemon thread."""

    def __init__(self, bind: str, healthy: Callable[[], tuple[bool, str]], ready: Callable[[], tuple[bool, str]],
                 kinds: dict[str, tuple[str, str]]) -> None:
        self.host, self.port = parse_metrics_bind(bind)
        self.registry = CollectorRegistry(auto_describe=False)
        self.snapshot = Snapshot(kinds)
        self.registry.register(self.snapshot)
        self.healthy, self.ready = healthy, ready
        self.tick_s = time.monotonic()
        self._server: ThreadingHTTPServer | None = None

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        return Histogram(f"{PREFIX}_{name}", help_text, registry=self.registry, buckets=buckets)

    def tick(self) -> None:
        """The owning loop is alive (healthz)."""
        self.tick_s = time.monotonic()

    def loop_alive(self) -> bool:
        return time.monotonic() - self.tick_s < LOOP_STALL_S

    def start(self) -> "MetricsServer":
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, code, ctype = generate_latest(server_self.registry), 200, CONTENT_TYPE_LATEST
                elif path in ("/healthz", "/readyz"):
                    check = server_self.healthy if path == "/healthz" else server_self.ready
                    try:
                        ok, why = check()
                    except Exception as exc:  # a check must never take the server down
                        ok, why = False, f"check failed: {type(exc).__name__}"
                    body, code, ctype = (why or ("ok" if ok else "not ok")).encode() + b"\n", 200 if ok else 503, "text/plain"
                else:
                    body, code, ctype = b"not found: /metrics, /healthz, /readyz\n", 404, "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        family = ThreadingHTTPServer.address_family
        if ":" in self.host:
            import socket
            family = socket.AF_INET6
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        try:
            self._server = server_class((self.host, self.port), Handler)
        except OSError as exc:
            raise TransportError(f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}; "
                                 f"choose another --metrics port") from None
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="metrics", daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


POSE_METRICS: dict[str, tuple[str, str]] = {
    "frames_total": STAGE_METRICS["frames_total"],
    "fps": STAGE_METRICS["fps"],
    "busy_seconds_total": STAGE_METRICS["busy_seconds_total"],
    "ms_per_frame": STAGE_METRICS["ms_per_frame"],
    "malformed_total": STAGE_METRICS["malformed_total"],
    "engine_connected": ("gauge", "1 while a pose worker hears the engine's pings"),
}


class PoseMetrics:
    """A pose worker's own metrics (`engine stage pose --metrics`): ready once its backend is loaded
    and the engine was heard, healthy while its loop turns."""

    def __init__(self, bind: str) -> None:
        self.connected = False
        self._next = 0.0
        self.server = MetricsServer(bind, self._healthy, self._ready, POSE_METRICS).start()

    def _healthy(self) -> tuple[bool, str]:
        return (True, "ok") if self.server.loop_alive() else (False, "the pose worker's loop is stalled")

    def _ready(self) -> tuple[bool, str]:
        # The loop (and so update()) runs only once the backend is loaded and the sockets connected.
        return (True, "ok") if self.connected else (False, "waiting for the engine")

    def update(self, meter: object, malformed: int, worker: int, connected: bool) -> None:
        """Once per loop turn: the worker's figures (cheap: a dict of a few numbers)."""
        self.server.tick()
        self.connected = connected
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.25
        fields = meter.fields()  # type: ignore[attr-defined]
        labels = {"stage": "pose", "worker": str(worker)}
        self.server.snapshot.set({
            "frames_total": [(labels, fields["frames"])], "fps": [(labels, fields["rate"])],
            "busy_seconds_total": [(labels, fields["ms_per_frame"] * fields["frames"] / 1e3)],
            "ms_per_frame": [(labels, fields["ms_per_frame"])], "malformed_total": [(labels, malformed)],
            "engine_connected": [({}, 1.0 if connected else 0.0)],
        })

    def close(self) -> None:
        self.server.close()


def pose_metrics(bind: str) -> PoseMetrics:
    return PoseMetrics(bind)
