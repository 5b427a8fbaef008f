"""A small HTTP file server for download tests (127.0.0.1, free port, background thread).

It serves a folder and can be told to misbehave: ``overrides`` replace a file's bytes (an altered
upstream file), ``cut_after`` closes the connection after N bytes of the next response(s) for a
path (an interrupted download), ``ignore_range`` makes it answer Range requests with the whole
file, and ``credentials`` demands HTTP basic auth. ``requests`` records (path, Range header,
status) of every request.
"""
from __future__ import annotations

import base64
import contextlib
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


@dataclass
class FileServer:
    root: Path
    port: int = 0
    overrides: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, list[int]] = field(default_factory=dict)  # path -> byte counts, one per request
    ignore_range: bool = False
    credentials: tuple[str, str] | None = None
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def paths_requested(self) -> list[str]:
        return [p for p, _, _ in self.requests]


def _handler(state: FileServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):  # noqa: C901 - a test double
            path = self.path.split("?", 1)[0].lstrip("/")
            rng = self.headers.get("Range")
            state.auth_headers.append(self.headers.get("Authorization"))
            if state.credentials is not None:
                token = base64.b64encode(":".join(state.credentials).encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    state.requests.append((path, rng, 401))
                    self._send(401, {"WWW-Authenticate": 'Basic realm="test"', "Content-Length": "0"})
                    return
            if path in state.overrides:
                data = state.overrides[path]
            else:
                file = (state.root / path).resolve()
                if state.root.resolve() not in file.parents or not file.is_file():
                    state.requests.append((path, rng, 404))
                    self._send(404, {"Content-Length": "0"})
                    return
                data = file.read_bytes()
            start = 0
            status = 200
            headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
            if rng and not state.ignore_range and rng.startswith("bytes="):
                first = int(rng[6:].split("-", 1)[0])
                if first >= len(data):
                    state.requests.append((path, rng, 416))
                    self._send(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
                    return
                start, status = first, 206
                headers["Content-Range"] = f"bytes {first}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            headers["Content-Length"] = str(len(body))
            state.requests.append((path, rng, status))
            cuts = state.cut_after.get(path)
            if cuts:
                n = cuts.pop(0)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body[:n])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(status, headers, body)

    return Handler


@contextlib.contextmanager
def serve(root: str | Path, **options) -> Iterator[FileServer]:
    """Serve ``root`` on 127.0.0.1 (free port) for the duration of the ``with`` block."""
    state = FileServer(Path(root), **options)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
