"""An HTTP proxy in front of a real cluster, for tests that watch or disturb what dsr sends it.

It relays every request unchanged and the cluster's answer back unchanged (hop-by-hop headers
aside); a subclass steps in by overriding `step_in`, to note a request or to answer it instead.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}
CUT = "cut"  # what `step_in` returns to close the connection unanswered

Answer = tuple[int, dict[str, str], bytes]


class RelayProxy:
    """Relays every request to `upstream`; `url` is where to send them."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._client = httpx.Client(timeout=30.0)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def step_in(self, path: str, headers: dict[str, str]) -> Answer | str | None:
        """What to do instead of relaying the request: an answer, `CUT`, or None to relay it."""
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                instead = proxy.step_in(self.path, headers)
                if instead == CUT:
                    self.close_connection = True
                    return
                if isinstance(instead, tuple):
                    self._answer(*instead)
                    return
                resp = proxy._client.request(self.command, proxy.upstream + self.path, content=body, headers=headers)
                self._answer(resp.status_code, {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP},
                             resp.content)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()
