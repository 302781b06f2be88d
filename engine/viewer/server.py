"""The viewer's web server (aiohttp): the page, its assets, and one WebSocket per browser.

The WebSocket carries two kinds of message: binary ones are JPEG frames of the watched
stream, text ones are the JSON state (labels, timeline, rates) a few times a second. The
browser may send `{"watch": STREAM}` (or `{"watch": null}` to follow the live stream).
Each socket sends the newest frame only once the previous one has gone out, so a slow
browser sees fewer frames and never builds a queue.
"""
from __future__ import annotations

import asyncio
import errno
import json
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web

from engine.errors import EngineError, TransportError
from engine.framework.endpoints import is_loopback_host
from engine.viewer.feed import Feed, ViewerOptions

STATIC = Path(__file__).with_name("static")
STATE_PERIOD_S = 0.25
MAX_CLIENT_MESSAGE = 4096


class Hub:
    """Wakes every socket handler when the feed has something new (called from the feed thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._changed = asyncio.Event()

    def notify_threadsafe(self) -> None:
        self.loop.call_soon_threadsafe(self._notify)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass


def build_app(feed: Feed, hub: Hub) -> web.Application:
    app = web.Application()
    sockets: set[web.WebSocketResponse] = set()

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def state(request: web.Request) -> web.Response:
        return web.Response(text=feed.state_json(), content_type="application/json")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_CLIENT_MESSAGE)
        await ws.prepare(request)
        sockets.add(ws)
        watching: list[str | None] = [None]
        feed.watch(None, +1)

        async def read_commands() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    stream = json.loads(msg.data).get("watch")
                except (ValueError, AttributeError):
                    continue
                if stream is None or isinstance(stream, str) and len(stream) < 1024:
                    feed.watch(watching[0], -1)
                    watching[0] = stream
                    feed.watch(stream, +1)

        reader = asyncio.create_task(read_commands())
        sent_version, next_state = -1, 0.0
        try:
            while not ws.closed and not reader.done():
                version, jpeg = feed.jpeg(watching[0])
                if jpeg is not None and version != sent_version:
                    await ws.send_bytes(jpeg)  # waits while the browser is behind: it gets the newest next time
                    sent_version = version
                now = time.monotonic()
                if now >= next_state:
                    next_state = now + STATE_PERIOD_S
                    await ws.send_str(feed.state_json())
                await hub.wait(STATE_PERIOD_S)
        except (ConnectionError, RuntimeError):
            pass  # the browser went away
        finally:
            reader.cancel()
            feed.watch(watching[0], -1)
            sockets.discard(ws)
        return ws

    async def close_sockets(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"engine stopping")

    app.router.add_get("/", index)
    app.router.add_get("/state.json", state)
    app.router.add_get("/ws", socket)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    app.on_shutdown.append(close_sockets)
    return app


def exposure_warning(host: str, port: int) -> str | None:
    """The line to print when the page is reachable from other machines (it has no password)."""
    if is_loopback_host(host):
        return None
    return (f"the viewer on {host}:{port} has no password: anyone who can reach this port sees the video and "
            f"labels; on untrusted networks bind 127.0.0.1 and use an SSH tunnel")


async def serve(options: ViewerOptions, should_stop: Callable[[], bool],
                on_ready: Callable[[str], None] = lambda url: None) -> None:
    """Serve the page until `should_stop()` is true (checked ten times a second)."""
    hub = Hub(asyncio.get_running_loop())
    feed = Feed(options, hub.notify_threadsafe)
    feed.start()
    runner = web.AppRunner(build_app(feed, hub), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, shutdown_timeout=0.2)
    try:
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise TransportError(f"viewer address {options.host}:{options.port} is already in use: "
                                     f"stop the program using it or choose another port for --view") from None
            raise TransportError(f"viewer cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from None
        if options.host in ("0.0.0.0", "::", ""):
            on_ready(f"http://127.0.0.1:{options.port}/ (or this machine's address from another one)")
        else:
            host = f"[{options.host}]" if ":" in options.host else options.host
            on_ready(f"http://{host}:{options.port}/")
        while not should_stop():
            if not feed.is_alive():  # exit non-zero: the supervisor restarts the view stage
                raise EngineError(f"viewer stopped reading the engine's sockets: {feed.error or 'unknown error'}")
            await asyncio.sleep(0.1)
    finally:
        feed.stop()
        await runner.cleanup()
        feed.join(timeout=1.0)
