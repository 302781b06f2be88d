"""The live web viewer: the page in a real headless browser, `engine view` against a remote engine,
and the pieces it is built from (label board, bind addresses)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import ConfigError
from engine.sources.synthetic import ACTIONS
from engine.viewer.board import BadLabel, LabelBoard, decode_label
from engine.viewer.feed import Feed, ViewerOptions, parse_bind
from pipeline_helpers import REPO, engine_cmd, free_port, taken_port

try:
    import aiohttp
except ModuleNotFoundError:  # a runtime dependency: missing under CI is a failure, elsewhere a skip
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("the viewer needs aiohttp: pip install 'aiohttp>=3.9,<4'", allow_module_level=True)

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,900", "--remote-allow-origins=*")


@pytest.fixture(scope="module")
def model(window_model: Path) -> Path:
    return window_model


def chromium_path() -> str:
    """Debian's chromium; skipped where it is not installed, failed under CI (CI=true)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must install it")
    pytest.skip(reason)


def label(**changes) -> dict:
    base = {"stream": "cam", "track": 1, "seq_from": 0, "seq_to": 7, "t_capture_ns": 1, "t_publish_ns": 2,
            "label": "waving", "score": 0.9, "topk": [["waving", 0.9]], "model": "m"}
    return {**base, **changes}


# --- pieces ----------------------------------------------------------------------------------
def test_a_client_connecting_before_the_first_frame_gets_the_whole_state_empty() -> None:
    """The page renders every state it gets: one without `people` or `rates` would break it."""
    feed = Feed(ViewerOptions(labels=f"tcp://127.0.0.1:{free_port()}", monitor=None))  # not started: nothing seen
    state = json.loads(feed.state_json())
    assert state["people"] == [] and state["streams"] == [] and state["frames"] == {}
    assert state["rates"]["frames_seen"] == 0 and state["rates"]["labels_seen"] == 0
    assert state["error"] is None and len(state["track_colors"]) > 1



def test_bind_addresses() -> None:
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_bind("[::1]:9001") == ("::1", 9001)
    for bad in ("web", "host:99999", "host:"):
        with pytest.raises(ConfigError):
            parse_bind(bad)


def test_board_keeps_labels_by_frame_and_a_timeline() -> None:
    board = LabelBoard(horizon_s=60)
    board.update(label(seq_to=7, label="waving"), now_s=100.0)
    board.update(label(seq_to=11, label="waving", score=0.95), now_s=100.5)
    board.update(label(seq_to=15, label="clapping"), now_s=101.0)
    board.update(label(track=2, seq_to=15, label="bending"), now_s=101.0)
    assert board.at("cam", 6) == {}
    assert board.at("cam", 12)[1]["seq_to"] == 11 and board.at("cam", 99)[1]["label"] == "clapping"
    assert board.latest("cam")[2]["label"] == "bending"
    rows = {row["track"]: row["segments"] for row in board.timeline(now_s=101.0)}
    # waving held from 100.0 until clapping replaced it at 101.0, with its best score
    assert rows[1] == [[1.0, 0.0, "waving", 0.95], [0.0, 0.0, "clapping", 0.9]]
    board.prune(now_s=200.0)
    assert board.timeline(now_s=200.0) == []


def test_board_rejects_what_is_not_a_label() -> None:
    import msgpack

    assert decode_label([b"labels", msgpack.packb(label())])["label"] == "waving"
    for parts in ([b"labels"], [b"other", msgpack.packb(label())], [b"labels", b"\xc1garbage"],
                  [b"labels", msgpack.packb(label(track="x"))], [b"labels", msgpack.packb({"label": "a"})],
                  [b"labels", msgpack.packb(label(score=float("nan")))]):
        with pytest.raises(BadLabel):
            decode_label(parts)


def test_running_without_a_viewer_never_imports_aiohttp() -> None:
    code = ("import sys, stages.sink, stages.view, engine.framework.commands.run, engine.framework.commands.view, engine.framework.supervisor; "
            "assert 'aiohttp' not in sys.modules, 'aiohttp imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_taken_viewer_port_is_one_clear_line(model: Path) -> None:
    with taken_port() as port:
        done = subprocess.run(engine_cmd("run", "--model", str(model), "--publish", f"tcp://127.0.0.1:{free_port()}",
                                         "--view", str(port), "--realtime", "--pose-workers", "1", "--duration", "20"),
                              cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr  # TransportError, relayed by the supervisor
    assert done.stderr.strip().splitlines()[-1] == (f"error: viewer address 127.0.0.1:{port} is already in use: stop the "
                                                    f"program using it or choose another port for --view")


def test_people_panel_lists_exactly_who_is_in_the_newest_frame() -> None:
    """Not the tracks labelled lately: the ones in the frame, labelled or not yet."""
    import zmq

    from engine.framework import transport
    from engine.framework.schema import encode_label

    ctx = zmq.Context.instance()
    labels_pub, monitor_pub = ctx.socket(zmq.PUB), ctx.socket(zmq.PUB)
    labels_port = labels_pub.bind_to_random_port("tcp://127.0.0.1")
    monitor_port = monitor_pub.bind_to_random_port("tcp://127.0.0.1")
    feed = Feed(ViewerOptions(labels=f"tcp://127.0.0.1:{labels_port}", monitor=f"tcp://127.0.0.1:{monitor_port}"))
    feed.start()

    def frame(seq: int, tracks: list[int]) -> None:
        kp = np.ones((len(tracks), 18, 3), np.float32)
        kp[..., :2] = np.random.default_rng(seq).uniform(50, 400, (len(tracks), 18, 2))
        transport.send(monitor_pub, {"stream": "cam", "seq": seq, "t_capture_ns": time.time_ns(), "size": [640, 480],
                                     "tracks": tracks}, {"keypoints": kp, "boxes": np.zeros((len(tracks), 4), np.float32)})

    def panel_after(send, timeout_s: float = 10) -> list[tuple[int, str | None]]:
        """Sends (again, until subscribers have joined) and returns the panel once it changed to what was sent."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            want = send()
            time.sleep(0.3)
            state = json.loads(feed.state_json())
            panel = [(p["track"], p["label"]) for p in state.get("people", []) if p["stream"] == "cam"]
            if panel == want:
                return panel
        raise AssertionError(f"the panel showed {panel}, not {want}")

    def first() -> list[tuple[int, str | None]]:
        for track, name in ((1, "waving"), (3, "clapping")):
            labels_pub.send_multipart(encode_label(label(track=track, label=name, t_capture_ns=time.time_ns()),
                                                   time.time_ns()))
        frame(0, [1, 3])
        return [(1, "waving"), (3, "clapping")]

    try:
        panel_after(first)
        # Track 1 left (labelled a moment ago, still on the board); track 5 came, with no label yet.
        panel_after(lambda: (frame(1, [5, 3]), [(3, "clapping"), (5, None)])[1])
        assert {row["track"] for row in feed.board.timeline(time.monotonic())} >= {1, 3}
        panel_after(lambda: (frame(2, []), [])[1])
        state = json.loads(feed.state_json())
        assert state["frames"]["cam"]["tracks"] == [] and state["frames"]["cam"]["people"] == 0
    finally:
        feed.stop()
        feed.join(timeout=5)
        labels_pub.close(linger=0)
        monitor_pub.close(linger=0)


# --- the page in a browser -------------------------------------------------------------------

class DevTools:
    """Just enough of the Chrome DevTools protocol: evaluate JavaScript, take a screenshot."""

    def __init__(self, ws) -> None:
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            reply = json.loads((await self.ws.receive(timeout=20)).data)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, expression: str):
        return (await self.call("Runtime.evaluate", expression=expression, returnByValue=True))["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float) -> object:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"page never satisfied {expression!r} within {timeout_s} s")


def start_chromium(profile: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return proc, int(port_file.read_text().split()[0])
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with code {proc.returncode} before opening its DevTools port")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("chromium did not open its DevTools port within 20 s")


async def look_at_page(url: str, devtools_port: int, screenshot: Path) -> tuple[str, int]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{devtools_port}/json/list") as reply:
            targets = await reply.json()
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 2**20) as ws:
            tab = DevTools(ws)
            await tab.call("Page.enable")
            await tab.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
            await tab.call("Page.navigate", url=url)
            shown_label = await tab.wait_for("document.querySelector('#people .person .label')?.textContent", 20)
            # The panel lists the tracks of the frame the page was last told about, no more, no fewer.
            listed, in_frame = json.loads(await tab.evaluate(
                "JSON.stringify([[...document.querySelectorAll('#people .person')].map((e) => +e.dataset.track),"
                " lastState.frames[lastState.auto_stream].tracks])"))
            assert listed == in_frame and listed
            width = await tab.wait_for("document.getElementById('video').naturalWidth", 20)
            await tab.wait_for("document.querySelector('#timeline .seg') !== null", 10)
            await asyncio.sleep(float(os.environ.get("VIEWER_SCREENSHOT_DELAY", "0")))  # for docs: a few labels in
            png = base64.b64decode((await tab.call("Page.captureScreenshot", format="png"))["data"])
    screenshot.write_bytes(png)
    return shown_label, width


def wait_listening(port: int, server: subprocess.Popen, timeout_s: float = 60) -> None:
    """Wait until something accepts connections on `port` while `server` (the process that will listen) runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, f"nothing listened on port {port} within {timeout_s:.0f} s"
            time.sleep(0.2)


def free_port_pair() -> int:
    """A free port P whose P + 1 is free too: `engine view` finds the monitor at the labels port + 1."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def test_page_shows_frames_and_labels_in_a_browser(model: Path, tmp_path: Path) -> None:
    chromium_path()
    view_port = free_port()
    engine = subprocess.Popen(
        engine_cmd("run", "--source", "synthetic:?subjects=9", "--model", str(model), "--publish", f"tcp://127.0.0.1:{free_port()}",
                   "--view", str(view_port), "--realtime", "--pose-workers", "1", "--no-print-labels", "--duration", "60"),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
        browser, devtools_port = start_chromium(profile)
        screenshot = Path(os.environ.get("VIEWER_SCREENSHOT", tmp_path / "viewer.png"))
        wait_listening(view_port, engine)  # the view stage listens once the engine has started it
        shown_label, width = asyncio.run(look_at_page(f"http://127.0.0.1:{view_port}/", devtools_port, screenshot))
    finally:
        if browser is not None:
            browser.kill()
            browser.wait()
        engine.terminate()
        _, err = engine.communicate(timeout=20)
    assert shown_label in ACTIONS
    assert width == 640  # the synthetic source's frame, not a placeholder
    image = cv2.imread(str(screenshot))
    assert image is not None and image.shape[0] > 400 and image.shape[1] > 800
    assert image.std() > 20  # not a blank page
    video = image[100:500, 40:700]  # where the frame sits in the layout: a picture, not one flat colour
    assert len(np.unique(video.reshape(-1, 3), axis=0)) > 500
    assert engine.returncode == 0, err


# --- engine view: a viewer for an engine running elsewhere -------------------------------------

def view_cmd(*args: str) -> list[str]:
    """`engine view ...`; until the command is listed in engine.framework.commands.COMMANDS, through its module."""
    from engine.framework.commands import COMMANDS

    if "view" in COMMANDS:
        return engine_cmd(*args)
    harness = ("import argparse, sys; from engine.framework.commands import view; p = argparse.ArgumentParser(); "
               "view.add_parser(p.add_subparsers(dest='command')); sys.exit(view.run(p.parse_args(sys.argv[1:])))")
    return [sys.executable, "-c", harness, *args]


def labelled(states: list[dict]) -> list[dict]:
    """The people of the last of `states` that has a label (the panel also lists people not labelled yet)."""
    for state in reversed(states):
        people = [p for p in state["people"] if p["label"] is not None]
        if people:
            return people
    return []


async def pull(url: str, seconds: float) -> tuple[list[bytes], list[dict]]:
    frames, states = [], []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not (len(frames) >= 3 and labelled(states)):
                msg = await ws.receive(timeout=seconds)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    frames.append(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    states.append(json.loads(msg.data))
    return frames, states


def test_engine_view_connects_to_an_engine_by_its_endpoints(model: Path) -> None:
    labels_port = free_port_pair()
    monitor_port = labels_port + 1
    view_port = free_port()
    engine = subprocess.Popen(
        engine_cmd("run", "--model", str(model), "--publish", f"tcp://127.0.0.1:{labels_port}",
                   "--monitor", f"tcp://127.0.0.1:{monitor_port}", "--realtime", "--pose-workers", "1",
                   "--no-print-labels", "--duration", "60"),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    view_args = ("view", "--connect", f"tcp://127.0.0.1:{labels_port}", "--bind", str(view_port))
    viewer = subprocess.Popen(view_cmd(*view_args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(view_port, viewer)
        frames, states = asyncio.run(pull(f"http://127.0.0.1:{view_port}/ws", 20))
    finally:
        viewer.terminate()
        engine.terminate()
        _, view_err = viewer.communicate(timeout=10)
        engine.communicate(timeout=20)
    assert viewer.returncode == 0, view_err
    image = cv2.imdecode(np.frombuffer(frames[-1], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (480, 640, 3)
    last = states[-1]
    assert labelled([last]) and labelled([last])[0]["label"] in ACTIONS
    assert last["backend"] == "replay" and last["model"] == "window"  # learnt from the streams, not from flags
    assert last["rates"]["frames_fps"] > 10


def test_a_stuck_browser_does_not_hold_the_pipeline_back(model: Path, tmp_path: Path) -> None:
    """A client that opens the page's socket and never reads: the lossless run still completes."""
    view_port = free_port()
    summary = tmp_path / "summary.json"
    engine = subprocess.Popen(
        engine_cmd("run", "--source", "synthetic:?loops=1&subjects=8", "--model", str(model), "--publish",
                   f"tcp://127.0.0.1:{free_port()}", "--view", str(view_port), "--pose-workers", "1", "--quiet",
                   "--summary", str(summary)),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                stuck.connect(("127.0.0.1", view_port))
                break
            except OSError:
                assert time.monotonic() < deadline and engine.poll() is None, "the viewer never listened"
                time.sleep(0.1)
        stuck.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        _, err = engine.communicate(timeout=120)  # never reads a byte of what it is sent
    finally:
        stuck.close()
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 0, err
    result = json.loads(summary.read_text())
    assert result["frames"] > 1000 and result["lost"] == 0
    assert result["frames"] == result["per_stage"]["capture"]["frames"]  # every frame read was classified
