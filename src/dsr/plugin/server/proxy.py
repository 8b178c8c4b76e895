"""Transparent pass-through of requests to the cluster.

One shared `httpx.AsyncClient` (connection pool, created at startup) forwards the method, the raw
path and query string, the headers (Authorization included) and the body, and streams the status,
headers and raw (still compressed, if the cluster compressed it) body back. Only hop-by-hop headers
are dropped, as an HTTP proxy must. httpx's own default headers are removed so the cluster sees the
caller's headers and nothing else (no injected `Accept-Encoding`, `User-Agent`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dsr.plugin.server.errors import RequestError, error_response

log = logging.getLogger(__name__)

HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
              b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"host", b"expect"}
BUFFER_LIMIT = 256 * 1024  # responses up to this size are buffered; larger ones stream


class BodyTooLarge(RequestError):
    def __init__(self, limit: int):
        super().__init__(f"request body is larger than the limit of {limit} bytes", status=413,
                         error_type="content_too_long_exception")


class Proxy:
    """Forwards requests to `upstream`; create it inside the event loop that will use it."""

    def __init__(self, upstream: str, *, verify: bool | str = True, timeout: float = 120.0,
                 max_body_bytes: int = 100 * 1024 * 1024) -> None:
        # dsr's own credentials (in the URL) are never lent to callers: each request carries its own
        self.upstream = httpx.URL(upstream.rstrip("/")).copy_with(username=None, password=None)
        self.base_path = self.upstream.raw_path.rstrip(b"/")
        self.max_body_bytes = max_body_bytes
        self.client = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            follow_redirects=False,
            trust_env=False,
        )
        for name in list(self.client.headers.keys()):
            del self.client.headers[name]

    async def aclose(self) -> None:
        await self.client.aclose()

    def _url(self, request: Request) -> httpx.URL:
        raw = self.base_path + request.scope.get("raw_path", request.url.path.encode())
        qs = request.scope.get("query_string", b"")
        if qs:
            raw += b"?" + qs
        return self.upstream.copy_with(raw_path=raw)

    async def _stream_body(self, request: Request) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            if chunk:
                yield chunk

    async def forward(self, request: Request, body: bytes | None = None) -> Response:
        """Send `request` upstream (with `body` when it was already read) and relay the answer."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            return _error(BodyTooLarge(self.max_body_bytes))
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in HOP_BY_HOP]
        if body is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            content: bytes | AsyncIterator[bytes] = body
        elif request.method in ("GET", "HEAD", "DELETE", "OPTIONS") and not declared and \
                b"transfer-encoding" not in {k.lower() for k, _ in request.headers.raw}:
            content = b""
        else:
            content = self._stream_body(request)
        upstream_request = self.client.build_request(request.method, self._url(request),
                                                     headers=headers, content=content)
        if content == b"" and not declared:
            # httpx adds Content-Length: 0 to bodiless requests; drop it when the caller sent none
            upstream_request.headers.pop("content-length", None)
        try:
            upstream = await self.client.send(upstream_request, stream=True)
        except BodyTooLarge as e:
            return _error(e)
        except httpx.TimeoutException as e:
            log.warning("cluster timed out on %s %s: %s", request.method, request.url.path, type(e).__name__)
            return error_response(504, "dsr_upstream_timeout_exception",
                                  f"the cluster did not answer in time ({type(e).__name__})")
        except httpx.TransportError as e:
            log.warning("cluster unreachable for %s %s: %s", request.method, request.url.path,
                        type(e).__name__)
            return error_response(502, "dsr_upstream_unavailable_exception",
                                  f"the cluster at {self.upstream.host}:{self.upstream.port} cannot be "
                                  f"reached ({type(e).__name__})")
        out_headers = [(k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP]
        length = upstream.headers.get("content-length")
        if request.method == "HEAD" or (length is not None and length.isdigit()
                                        and int(length) <= BUFFER_LIMIT):
            try:
                data = b"".join([chunk async for chunk in upstream.aiter_raw()])
            except httpx.TransportError as e:
                return error_response(502, "dsr_upstream_unavailable_exception",
                                      f"the cluster closed the connection ({type(e).__name__})")
            finally:
                await upstream.aclose()
            response = Response(data, status_code=upstream.status_code)
            response.raw_headers = out_headers
            return response
        response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                     background=BackgroundTask(upstream.aclose))
        response.raw_headers = out_headers
        return response


def _error(e: RequestError) -> Response:
    return error_response(e.status, e.error_type, e.reason)
