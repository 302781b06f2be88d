"""`engine bridge`: labels to a real MQTT broker (mosquitto, started here on a free port), through a
real ZeroMQ PUB, read back by a real paho-mqtt subscriber; the broker stopped and restarted mid-run.

mosquitto comes from Debian (scripts/test.sh installs it when missing); without it these tests skip.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import zmq

from engine.bridge.buffer import DropOldestBuffer
from engine.bridge.status import StreamStatuses
from engine.bridge.topics import escape_level, label_topic, parse_label_topic, unescape_level
from engine.framework.schema import encode_label
from pipeline_helpers import REPO, engine_cmd, free_port, scrape

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None)
needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (scripts/test.sh installs it)")
BASE = "har/test"


# --- topic names ------------------------------------------------------------------------------

STREAMS = ["camera:0", "mhad:S08/A03/R01", "a+b#c", "100%", "%2F", "", "/", "//x//", "rtsp://h/s?x=1&y=#2",
           "caméra 1 ☃", "tab\there", "nul\x00x", "\x7f\x85", "$SYS", "synthetic:A05?loops=1"]


@pytest.mark.parametrize("stream", STREAMS)
def test_a_stream_id_is_one_topic_level_and_comes_back(stream: str) -> None:
    level = escape_level(stream)
    assert not set(level) & set("/+#\x00") and all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in level)
    assert unescape_level(level) == stream
    topic = label_topic(BASE, stream, [7])
    assert topic == f"{BASE}/{level}/7"
    assert parse_label_topic(BASE, topic) == (stream, (7,))


def test_the_documented_examples() -> None:
    assert label_topic("har", "mhad:S08/A03/R01", [0]) == "har/mhad:S08%2FA03%2FR01/0"
    assert label_topic("har", "camera:0", [3]) == "har/camera:0/3"
    assert label_topic("har", "camera:0", [3, 5]) == "har/camera:0/3-5"  # a pair model's label
    assert parse_label_topic("har", "har/camera:0/3-5") == ("camera:0", (3, 5))
    assert escape_level("a+b#c%") == "a%2Bb%23c%25"


def test_a_full_buffer_drops_its_oldest_and_counts() -> None:
    buf: DropOldestBuffer[int] = DropOldestBuffer(3)
    assert [buf.push(i) for i in range(5)] == [False, False, False, True, True]
    assert buf.dropped == 2 and [buf.pop() for _ in range(len(buf))] == [2, 3, 4]


# --- the command line -------------------------------------------------------------------------

def bridge_cmd(*args: str) -> list[str]:
    """`engine bridge ...`; until the command is in engine.framework.commands.COMMANDS, through its module."""
    from engine.framework.commands import COMMANDS

    if "bridge" in COMMANDS:
        return engine_cmd("bridge", *args)
    harness = ("import sys; from engine.framework.options import Parser; from engine.framework.commands import bridge; "
               "from engine.errors import EngineError; p = Parser(prog='engine'); bridge.add_parser(p.add_subparsers(dest='command')); "
               "a = p.parse_args(['bridge', *sys.argv[1:]])\n"
               "try: sys.exit(bridge.run(a))\n"
               "except EngineError as e: print(f'error: {e}', file=sys.stderr); sys.exit(e.exit_code)")
    return [sys.executable, "-c", harness, *args]


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:1883/har", "scheme must be mqtt"),
    ("mqtt://127.0.0.1:port/har", "port must be a number"),
    ("mqtt://127.0.0.1:99999/har", "port must be a number"),
    ("mqtt://127.0.0.1:1883", "no topic"),
    ("mqtt://127.0.0.1:1883/", "no topic"),
    ("mqtt://127.0.0.1:1883/har/+", "wildcard"),
    ("mqtt:///har", "no broker host"),
    ("mqtt://user:secret@127.0.0.1/har", "credentials do not belong"),
    ("mqtt://no-such-host.invalid:1883/har", "does not resolve"),
])
def test_a_bad_broker_url_is_one_line_and_exit_2(url: str, says: str) -> None:
    done = subprocess.run(bridge_cmd("--to", url, "--connect", "tcp://127.0.0.1:1"), cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --to") and says in lines[0], done.stderr
    assert "secret" not in done.stderr


def test_tls_flags_need_mqtts() -> None:
    done = subprocess.run(bridge_cmd("--to", "mqtt://127.0.0.1:1883/har", "--tls-insecure"), cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == "error: --tls-insecure needs TLS: use an mqtts:// URL in --to"


# --- a real broker ----------------------------------------------------------------------------

class Broker:
    """mosquitto on 127.0.0.1:`port`, sessions persisted in `folder` across a stop and a start."""

    def __init__(self, folder: Path, extra: str = "allow_anonymous true\n") -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        # As root, mosquitto would switch to its own user, which cannot write the test's (0700) folder.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{extra}{user}persistence true\nmax_queued_messages 0\n"
                             f"persistence_location {folder}/\nlog_dest stderr\nlog_type error\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it; the monotonic time it accepts connections."""
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return time.monotonic()
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()
                time.sleep(0.02)
        raise AssertionError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class Reader:
    """A real MQTT subscriber (QoS 1, persistent session: what the broker queued while it was away arrives)."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[float, str, dict]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-reader-{os.getpid()}-{port}",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((time.monotonic(), msg.topic, json.loads(msg.payload)))

    def labels(self, stream: str | None = None) -> dict[tuple, tuple[float, str, dict]]:
        """Distinct labels (QoS 1 is at least once), first arrival kept, keyed by (stream, track, seq_to)."""
        seen: dict[tuple, tuple[float, str, dict]] = {}
        with self.lock:
            for at, topic, label in self.messages:
                if label.get("kind") == "status":  # a stream's status (--stream-status), not a label
                    continue
                if stream is None or label["stream"] == stream:
                    seen.setdefault((label["stream"], label["track"], label["seq_to"]), (at, topic, label))
        return seen

    def statuses(self, stream: str) -> list[tuple[str, dict]]:
        with self.lock:
            return [(topic, m) for _, topic, m in self.messages if m.get("kind") == "status" and m["stream"] == stream]

    def wait(self, stream: str, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.labels(stream)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.labels(stream)) >= count, f"{len(self.labels(stream))} of {count} labels of {stream!r} arrived"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Bridge:
    """`engine bridge` as a subprocess; its stderr lines kept with the monotonic time they were read."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(bridge_cmd(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_line(self, pattern: str, timeout: float = 30, after: float = 0.0) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= after and re.search(pattern, line):
                    return at, line
            assert self.proc.poll() is None, "\n".join(line for _, line in self.lines)
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r}: " + "\n".join(line for _, line in self.lines))

    def stop(self, signum: int = signal.SIGTERM) -> str:
        self.proc.send_signal(signum)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=5)
        assert self.proc.returncode == 0, "\n".join(line for _, line in self.lines)
        return "\n".join(line for _, line in self.lines)


def label(stream: str, track: int, seq: int, name: str = "jumping jacks") -> dict:
    return {"stream": stream, "track": track, "seq_from": max(0, seq - 29), "seq_to": seq, "t_capture_ns": 10**18 + seq,
            "label": name, "score": 0.75 + (seq % 10) / 100, "topk": [[name, 0.75], ["walking", 0.125]],
            "model": "default.onnx"}


class Engine:
    """A stand-in for the classify stage's PUB socket: sends labels made with the one codec."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.sock = zmq.Context.instance().socket(zmq.PUB)
        self.sock.bind(self.endpoint)
        self.sent: list[dict] = []

    def send(self, fields: dict) -> None:
        self.sock.send_multipart(encode_label(fields, time.time_ns()))
        self.sent.append(fields)

    def warm_up(self, reader: Reader) -> int:
        """Send `warmup` labels until one comes through the bridge (ZeroMQ's subscription takes a moment)."""
        deadline, seq = time.monotonic() + 30, 0
        while not reader.labels("warmup") and time.monotonic() < deadline:
            self.send(label("warmup", 0, seq))
            seq += 1
            time.sleep(0.05)
        assert reader.labels("warmup"), "no label came through the bridge"
        time.sleep(0.3)  # the rest of the warm-up labels in flight
        return len(reader.labels("warmup"))

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def world(tmp_path: Path):
    broker = Broker(tmp_path)
    broker.start()
    engine = Engine()
    reader = Reader(broker.port, f"{BASE}/#")
    made: list[Bridge] = []

    def bridge(*args: str) -> Bridge:
        made.append(Bridge("--to", f"mqtt://127.0.0.1:{broker.port}/{BASE}", "--connect", engine.endpoint,
                           "--reconnect-max", "0.5", "--summary", str(tmp_path / "summary.json"), *args))
        made[-1].wait_line("connected to")
        return made[-1]

    yield broker, engine, reader, bridge, tmp_path / "summary.json"
    for b in made:
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()
    reader.close()
    engine.close()
    broker.stop()


@needs_broker
def test_labels_arrive_on_their_topics_with_the_same_content(world) -> None:
    broker, engine, reader, start_bridge, summary_path = world
    bridge = start_bridge()
    warm = engine.warm_up(reader)
    streams = ["mhad:S08/A03/R01", "camera:0", "a+b#c"]
    for seq in range(40):
        for stream in streams:
            engine.send(label(stream, seq % 2, seq))
    engine.sock.send_multipart([b"labels", b"\xc1 not msgpack"])
    engine.sock.send_multipart([b"labels", b"\x80"])  # msgpack, but an empty map: no label fields
    for stream in streams:
        reader.wait(stream, 40)
    out = bridge.stop(signal.SIGINT)
    for stream in streams:
        got = reader.labels(stream)
        for fields in (f for f in engine.sent if f["stream"] == stream):
            _, topic, published = got[(stream, fields["track"], fields["seq_to"])]
            assert topic == label_topic(BASE, stream, [fields["track"]]) and parse_label_topic(BASE, topic) == (stream, (fields["track"],))
            assert {k: v for k, v in published.items() if k != "t_publish_ns"} == fields
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == summary["published"] == summary["acknowledged"] == warm + 120, summary
    assert summary["dropped"] == 0 and summary["malformed"] == 2 and summary["unsent"] == 0
    assert out.splitlines()[-1] == (f"bridge: received {warm + 120}, published {warm + 120}, acknowledged {warm + 120}, "
                                    "dropped 0, malformed 2")



@needs_broker
def test_a_pair_label_goes_to_its_pair_topic_with_both_tracks(world) -> None:
    broker, engine, reader, start_bridge, _ = world
    start_bridge()
    engine.warm_up(reader)
    one, pair = label("camera:0", 3, 90), {**label("camera:0", 3, 91, "hugging"), "tracks": [3, 5]}
    engine.send(one)
    engine.send(pair)
    reader.wait("camera:0", 2)
    got = reader.labels("camera:0")
    _, topic, published = got[("camera:0", 3, 91)]
    assert topic == f"{BASE}/camera:0/3-5" and parse_label_topic(BASE, topic) == ("camera:0", (3, 5))
    assert published["kind"] == "pair" and published["tracks"] == [3, 5] and published["label"] == "hugging"
    assert got[("camera:0", 3, 90)][1] == f"{BASE}/camera:0/3" and "tracks" not in got[("camera:0", 3, 90)][2]

@needs_broker
def test_labels_sent_while_the_broker_is_away_arrive_when_it_returns(world) -> None:
    broker, engine, reader, start_bridge, summary_path = world
    bridge = start_bridge()
    warm = engine.warm_up(reader)
    for seq in range(50):
        engine.send(label("cam", 0, seq))
        time.sleep(0.005)
    reader.wait("cam", 50)
    broker.stop()
    bridge.wait_line("went away")
    for seq in range(50, 150):  # the broker is away: buffered by the bridge
        engine.send(label("cam", 0, seq))
        time.sleep(0.005)
    time.sleep(0.5)
    back_at = broker.start()
    back_line_at, back_line = bridge.wait_line(r"back after", after=back_at - 1)
    assert re.search(r": 100 labels buffered, 0 dropped meanwhile$", back_line), back_line
    for seq in range(150, 200):
        engine.send(label("cam", 0, seq))
        time.sleep(0.005)
    reader.wait("cam", 200)
    got = reader.labels("cam")
    first_after = min(at for (_, _, seq), (at, _, _) in got.items() if 50 <= seq < 150)
    bridge.stop()
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == summary["published"] == warm + 200 and summary["dropped"] == 0, summary
    assert summary["acknowledged"] == summary["published"] and summary["outages"] == 1
    figures = {"delivered": len(got), "dropped": summary["dropped"],
               "bridge_reconnected_s": round(back_line_at - back_at, 3),
               "first_buffered_label_at_subscriber_s": round(first_after - back_at, 3),
               "outage_s": summary["outage_s"]}
    print(f"\nbridge outage figures: {json.dumps(figures)}")


@needs_broker
def test_a_small_buffer_drops_the_oldest_and_counts_them_exactly(world) -> None:
    broker, engine, reader, start_bridge, summary_path = world
    bridge = start_bridge("--buffer", "20")
    warm = engine.warm_up(reader)
    broker.stop()
    bridge.wait_line("went away")
    for seq in range(100):
        engine.send(label("cam", 1, seq))
        time.sleep(0.002)
    time.sleep(0.5)  # all 100 reach the bridge: it keeps the newest 20
    back_at = broker.start()
    _, back_line = bridge.wait_line(r"back after", after=back_at - 1)
    assert re.search(r": 20 labels buffered, 80 dropped meanwhile$", back_line), back_line
    reader.wait("cam", 20)
    out = bridge.stop(signal.SIGINT)
    assert sorted(seq for (_, _, seq) in reader.labels("cam")) == list(range(80, 100))
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == warm + 100 and summary["dropped"] == 80, summary
    assert summary["published"] + summary["dropped"] == summary["received"] and summary["unsent"] == 0
    assert "dropped 80, malformed 0, 1 broker outage" in out.splitlines()[-1]
    print(f"\nbridge overflow figures: received {summary['received']}, published {summary['published']}, "
          f"dropped {summary['dropped']}, delivered after the outage {len(reader.labels('cam'))}")


@needs_broker
def test_a_running_engines_labels_reach_the_broker(world, tmp_path: Path) -> None:
    """The real pipeline (synthetic person, replayed pose, shipped model): every label it writes to
    --labels-out reaches the broker on its topic, the same label."""
    broker, _, reader, start_bridge, summary_path = world
    port = free_port()
    bridge = Bridge("--to", f"mqtt://127.0.0.1:{broker.port}/{BASE}", "--connect", f"tcp://127.0.0.1:{port}",
                    "--summary", str(summary_path))
    bridge.wait_line("connected to")
    labels_out = tmp_path / "labels.jsonl"
    run = subprocess.run(engine_cmd("run", "--source", "synthetic:A05?loops=1", "--pose", "replay", "--publish",
                                    f"tcp://127.0.0.1:{port}", "--labels-out", str(labels_out), "--quiet"),
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    written = [json.loads(line) for line in labels_out.read_text().splitlines()]
    assert written
    stream = written[0]["stream"]
    reader.wait(stream, len(written))
    bridge.stop()
    got = reader.labels(stream)
    for fields in written:
        _, topic, published = got[(fields["stream"], fields["track"], fields["seq_to"])]
        assert topic == f"{BASE}/{escape_level(fields['stream'])}/{fields['track']}"
        assert {k: published[k] for k in fields if k != "t_publish_ns"} == {k: v for k, v in fields.items() if k != "t_publish_ns"}
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == summary["published"] == summary["acknowledged"] == len(written), summary




def run_with_bridge(broker: Broker, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict], dict]:
    """`engine run --bridge` on one synthetic action to `broker`: (the run, the labels it wrote, its summary)."""
    labels_out, summary_path = tmp_path / "labels.jsonl", tmp_path / "run.json"
    run = subprocess.run(engine_cmd("run", "--source", "synthetic:A05?loops=1", "--pose", "replay",
                                    "--publish", f"tcp://127.0.0.1:{free_port()}",
                                    "--bridge", f"mqtt://127.0.0.1:{broker.port}/{BASE}",
                                    "--labels-out", str(labels_out), "--summary", str(summary_path), *args),
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    written = [json.loads(line) for line in labels_out.read_text().splitlines()]
    assert written
    return run, written, json.loads(summary_path.read_text())

@needs_broker
def test_engine_run_with_bridge_delivers_every_label_and_counts_it(world, tmp_path: Path) -> None:
    """`engine run --bridge`: the bridge is a stage of the run, stopped after the classifier, so every
    label of a recorded source reaches the broker before the run exits; the summary says so."""
    broker, _, reader, _, _ = world
    run, written, summary = run_with_bridge(broker, tmp_path)
    reader.wait(written[0]["stream"], len(written))
    got = reader.labels(written[0]["stream"])
    assert {(f["stream"], f["track"], f["seq_to"]) for f in written} <= set(got)
    bridge = summary["bridge"]
    assert bridge["received"] == bridge["acknowledged"] == len(written), bridge
    assert bridge["dropped"] == bridge["unsent"] == 0, bridge
    assert re.search(r"\| mqtt \d+ sent 0 dropped", run.stderr), run.stderr[-2000:]



@needs_broker
def test_metrics_say_what_the_bridge_did_as_the_summary_does(world, tmp_path: Path) -> None:
    """`engine run --bridge --metrics`: the bridge's figures on /metrics, equal to the summary's at the end
    (the supervisor in this process, so its metrics server outlives the run)."""
    from engine.framework.config import build_options
    from engine.framework.supervisor import Supervisor

    broker = world[0]
    port, summary_path = free_port(), tmp_path / "run.json"
    supervisor = Supervisor(build_options(None, {
        "source": ("synthetic:A05?loops=1",), "pose": "replay", "publish": f"tcp://127.0.0.1:{free_port()}",
        "bridge": f"mqtt://127.0.0.1:{broker.port}/{BASE}", "metrics": f"127.0.0.1:{port}",
        "summary": str(summary_path), "quiet": True}))
    try:
        assert supervisor.run() == 0
        bridge = json.loads(summary_path.read_text())["bridge"]
        samples = scrape(port)
    finally:
        if supervisor.metrics is not None:
            supervisor.metrics.close()
    assert bridge["acknowledged"] > 0 and bridge["dropped"] == 0, bridge
    for outcome in ("received", "published", "acknowledged", "dropped"):
        assert samples[("har_engine_mqtt_labels_total", frozenset({("outcome", outcome)}))] == bridge[outcome], outcome
    assert samples[("har_engine_mqtt_outages_total", frozenset())] == bridge["outages"] == 0
    assert samples[("har_engine_mqtt_buffered", frozenset())] == bridge["buffered"] == 0
    assert samples[("har_engine_mqtt_connected", frozenset())] == float(bridge["connected"])


@needs_broker
def test_stream_status_says_what_the_stream_did_and_stays_retained(world, tmp_path: Path) -> None:
    """`--bridge-stream-status`: each stream's status (frames classified, labels, tracks, ended) on
    TOPIC/<stream>/status, the last one retained for a subscriber that comes after the run."""
    broker, _, reader, _, _ = world
    _, written, summary = run_with_bridge(broker, tmp_path, "--quiet", "--bridge-stream-status")
    stream = written[0]["stream"]
    frames = summary["per_stage"]["classify"]["frames"]
    deadline = time.monotonic() + 20
    while not any(m["ended"] for _, m in reader.statuses(stream)) and time.monotonic() < deadline:
        time.sleep(0.05)
    topic, last = reader.statuses(stream)[-1]
    assert topic == f"{BASE}/{escape_level(stream)}/status"
    assert last["ended"] and last["frames"] == frames and last["labels"] == len(written)
    assert last["tracks"] == sorted({f["track"] for f in written})
    assert summary["bridge"]["status_published"] >= 1 and summary["bridge"]["acknowledged"] == len(written)
    later = Reader(broker.port, f"{BASE}/+/status")  # after the run: the broker's retained copy
    try:
        deadline = time.monotonic() + 10
        while not later.statuses(stream) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert later.statuses(stream) and later.statuses(stream)[-1][1] == last
    finally:
        later.close()


def test_stream_status_snapshots_come_once_an_interval_and_at_an_end() -> None:
    statuses = StreamStatuses(interval_s=1.0, recent_s=5.0)
    assert statuses.due(0.0) == []
    statuses.progress("cam", 0, 0.0)
    statuses.label({"stream": "cam", "track": 2}, 0.1)
    statuses.label({"stream": "cam", "track": 1, "tracks": [1, 4]}, 0.2)
    first = statuses.due(0.2, wall_ns=7)
    assert first == [{"kind": "status", "stream": "cam", "frames": 1, "ended": False, "labels": 2,
                      "label_rate": 0.4, "tracks": [1, 2, 4], "t_ns": 7}]
    statuses.progress("cam", 29, 0.5)
    assert statuses.due(0.9) == []  # within the interval
    assert statuses.due(1.2)[0]["frames"] == 30
    assert statuses.due(2.5) == []  # nothing new
    statuses.progress("cam", None, 2.6)
    ended = statuses.due(2.6)  # an end is said at once
    assert ended and ended[0]["ended"] and ended[0]["frames"] == 30
    gone = statuses.due(6.0)  # the labels left the 5 s window: rate and tracks change
    assert gone and gone[0]["label_rate"] == 0 and gone[0]["tracks"] == []
    assert statuses.due(9.0) == []

def test_engine_run_refuses_a_bad_bridge_url_before_starting() -> None:
    run = subprocess.run(engine_cmd("run", "--bridge", "mqtt://127.0.0.1:1883", "--duration", "5"),
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: "), run.stderr
    assert "--bridge mqtt://127.0.0.1:1883: no topic" in run.stderr  # the flag typed, not `engine bridge`'s --to


OPENSSL = shutil.which("openssl")


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""
    def openssl(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=folder, check=True, capture_output=True, timeout=60)

    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt",
            "-days", "2", "-extfile", "san.ext")
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


@needs_broker
@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (it makes the test certificates)")
def test_tls_and_a_password(tmp_path: Path) -> None:
    """mqtts with the broker checked against --tls-ca and a password from the environment; a wrong
    password or another CA is one line and exit 2, and the password is never printed."""
    ca, cert, key = make_certificates(tmp_path)
    (tmp_path / "other").mkdir()
    other_ca, _, _ = make_certificates(tmp_path / "other")
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(tmp_path / "passwd"), "bridge", "s3cret-pw"], check=True, timeout=30)
    broker = Broker(tmp_path, f"allow_anonymous false\npassword_file {tmp_path}/passwd\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    broker.start()
    engine = Engine()
    url = f"mqtts://127.0.0.1:{broker.port}/{BASE}"
    try:
        def once(*args: str, password: str) -> subprocess.CompletedProcess:
            return subprocess.run(bridge_cmd("--to", url, "--connect", engine.endpoint, "--duration", "3", *args),
                                  cwd=REPO, capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "MQTT_PASSWORD": password})

        wrong = once("--tls-ca", str(ca), "--username", "bridge", "--password-env", "MQTT_PASSWORD", password="wrong-pw")
        assert wrong.returncode == 2 and wrong.stderr.strip().splitlines()[-1].startswith("error: --to mqtts://"), wrong.stderr
        assert "bad user name or password" in wrong.stderr or "not authorized" in wrong.stderr, wrong.stderr
        other = once("--tls-ca", str(other_ca), "--username", "bridge", "--password-env", "MQTT_PASSWORD", password="s3cret-pw")
        assert other.returncode == 2 and "TLS handshake failed" in other.stderr, other.stderr
        errors = [line for line in other.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and other.stderr.strip().endswith(errors[0]), other.stderr
        for done in (wrong, other):
            assert "s3cret-pw" not in done.stderr + done.stdout and "wrong-pw" not in done.stderr + done.stdout
        os.environ["MQTT_PASSWORD"] = "s3cret-pw"
        try:
            good = Bridge("--to", url, "--connect", engine.endpoint, "--tls-ca", str(ca), "--username", "bridge",
                          "--password-env", "MQTT_PASSWORD", "--summary", str(tmp_path / "summary.json"))
        finally:
            del os.environ["MQTT_PASSWORD"]
        good.wait_line("connected to 127.0.0.1")
        for seq in range(40):  # 2 s of labels (the first may go before ZeroMQ's subscription is through)
            engine.send(label("tls", 0, seq))
            time.sleep(0.05)
        out = good.stop()
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["acknowledged"] == summary["published"] == summary["received"] > 0, summary
        assert "s3cret-pw" not in out
    finally:
        engine.close()
        broker.stop()


@needs_broker
def test_a_broker_that_is_not_up_yet_gets_the_labels_once_it_is(world) -> None:
    broker, engine, reader, _, summary_path = world
    broker.stop()
    bridge = Bridge("--to", f"mqtt://127.0.0.1:{broker.port}/{BASE}", "--connect", engine.endpoint,
                    "--reconnect-max", "0.5", "--summary", str(summary_path))
    bridge.wait_line("not reachable")
    for seq in range(60):  # 1.2 s: the first may go before ZeroMQ's subscription is through
        engine.send(label("early", 0, seq))
        time.sleep(0.02)
    time.sleep(0.3)
    broker.start()
    _, line = bridge.wait_line("connected to")
    buffered = int(re.search(r"\((\d+) labels buffered, 0 dropped while it was unreachable\)", line).group(1))
    assert buffered > 0, line
    reader.wait("early", buffered)
    bridge.stop()
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == summary["published"] == summary["acknowledged"] == buffered == len(reader.labels("early"))


@needs_broker
def test_labels_still_buffered_at_exit_are_counted_unsent(world) -> None:
    broker, engine, reader, start_bridge, summary_path = world
    bridge = start_bridge("--buffer", "30")
    warm = engine.warm_up(reader)
    broker.stop()
    bridge.wait_line("went away")
    for seq in range(50):
        engine.send(label("late", 0, seq))
        time.sleep(0.002)
    time.sleep(0.5)
    out = bridge.stop()
    summary = json.loads(summary_path.read_text())
    assert (summary["received"], summary["dropped"], summary["unsent"]) == (warm + 50, 20, 30), summary
    assert summary["received"] == summary["published"] + summary["dropped"] + summary["unsent"]
    assert out.splitlines()[-1].endswith("dropped 20, malformed 0, unsent 30, 1 broker outage")
