"""A live network camera for tests: an MJPEG stream over HTTP on 127.0.0.1 that can be cut.

`multipart/x-mixed-replace` is what many IP cameras serve and what OpenCV's FFmpeg backend
opens from `http://127.0.0.1:PORT/stream.mjpg`. The frames are drawn with engine.sources.synthetic
(a person on a background), so a real pose backend finds someone in them.

`go_down()` closes every open connection and the listening socket (clients then get
"connection refused"), `come_back()` listens again on the same port. The server stops by
itself after `max_seconds`, so a failing test cannot leave it running.
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "frameboundary"
PATH = "/stream.mjpg"


def jpeg_frames(frames: list[np.ndarray], quality: int = 80) -> list[bytes]:
    out = []
    for frame in frames:
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("frame cannot be encoded as JPEG")
        out.append(data.tobytes())
    return out


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # come_back() binds the same port right after go_down()
    daemon_threads = True


class MjpegServer:
    """Serves `frames` in a loop at `fps` to every client of http://127.0.0.1:PORT/stream.mjpg."""

    def __init__(self, frames: list[np.ndarray], fps: float = 15.0, port: int = 0, max_seconds: float = 180.0) -> None:
        self._jpegs = jpeg_frames(frames)
        self.fps = fps
        self.port = port
        self._deadline = time.monotonic() + max_seconds
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._up = threading.Event()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.frames_sent = 0
        self.connections = 0
        self._watchdog = threading.Thread(target=self._expire, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def __enter__(self) -> "MjpegServer":
        self.come_back()
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_down()

    def come_back(self) -> None:
        """Listen (again) on 127.0.0.1:port."""
        if self._server is not None:
            return
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        self._up.set()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def go_down(self) -> None:
        """Drop every client and stop listening: new connections are refused."""
        self._up.clear()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            for conn in list(self._clients):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._clients.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _expire(self) -> None:
        while time.monotonic() < self._deadline:
            time.sleep(0.2)
        self.go_down()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one response per connection, closed at its end

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.split("?")[0] != PATH:
                    self.send_error(404)
                    return
                with owner._lock:
                    owner._clients.add(self.connection)
                    owner.connections += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    owner._stream(self.wfile)
                except OSError:
                    pass  # the client left or go_down() cut the connection
                finally:
                    with owner._lock:
                        owner._clients.discard(self.connection)

        return Handler

    def _stream(self, out) -> None:
        period, i = 1.0 / self.fps, 0
        next_t = time.monotonic()
        while self._up.is_set() and time.monotonic() < self._deadline:
            jpeg = self._jpegs[i % len(self._jpegs)]
            out.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode())
            out.write(jpeg)
            out.write(b"\r\n")
            out.flush()
            self.frames_sent += 1
            i += 1
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
