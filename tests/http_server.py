"""A tiny HTTP file server for download tests: 127.0.0.1 only, in a background thread.

Each served path can misbehave on purpose: answer 5xx a few times, cut the connection after
some bytes, ignore ``Range`` headers, or send an HTML page. Every request is recorded (path,
Range header) so tests can check that a download really resumed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    content_type: str = "application/octet-stream"
    fail_times: int = 0  # answer 503 this many times first
    fail_status: int = 503
    cut_after: int | None = None  # send only this many bytes (but announce all), ...
    cut_times: int = 0  # ... this many times
    ignore_range: bool = False
    status: int = 200
    hits: int = field(default=0)


class FileServer:
    """``with FileServer() as srv: srv.add('/a.bin', b'...'); url = srv.url('/a.bin')``."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a cut is a real close

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                path = self.path.split("?")[0]
                with server._lock:
                    server.requests.append((path, self.headers.get("Range")))
                    served = server.files.get(path)
                    if served is not None:
                        served.hits += 1
                if served is None:
                    self.send_error(404)
                    return
                if served.fail_times > 0:
                    served.fail_times -= 1
                    self.send_error(served.fail_status)
                    return
                if served.status != 200:
                    self.send_error(served.status)
                    return
                data, start, status = served.data, 0, 200
                header = self.headers.get("Range")
                if header and not served.ignore_range and header.startswith("bytes="):
                    start = int(header[len("bytes="):].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Type", served.content_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if served.cut_after is not None and served.cut_times > 0:
                    served.cut_times -= 1
                    self.wfile.write(body[: served.cut_after])
                    self.wfile.flush()
                    return  # the connection closes with fewer bytes than announced
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def add(self, path: str, data: bytes, **behaviour) -> Served:
        served = Served(data=data, **behaviour)
        self.files[path] = served
        return served

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if p == path]

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
