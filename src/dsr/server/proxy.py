"""Transparent pass-through of requests to the cluster.

One shared aiohttp `ClientSession` (connection pool, created at startup) forwards the method, the raw
path and query string, the headers (Authorization included) and the body, and streams the status,
headers and raw (still compressed, if the cluster compressed it) body back. Only hop-by-hop headers
are dropped, as an HTTP proxy must. The client's own default headers are suppressed so the cluster
sees the caller's headers and nothing else (no injected `Accept-Encoding`, `User-Agent`, `Accept`),
and it keeps no cookies. aiohttp rather than httpx: on the same request it adds about 1.7 ms less
per round trip, which is most of what a pass-through costs.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator

import aiohttp
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from yarl import URL

from dsr.server.errors import RequestError, error_response

log = logging.getLogger(__name__)

HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
              b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"host", b"expect"}
BUFFER_LIMIT = 256 * 1024  # responses up to this size are buffered; larger ones stream
STREAM_CHUNK = 64 * 1024
CLIENT_DEFAULT_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class BodyTooLarge(RequestError):
    def __init__(self, limit: int):
        super().__init__(f"request body is larger than the limit of {limit} bytes", status=413,
                         error_type="content_too_long_exception")


class Proxy:
    """Forwards requests to `upstream`; create it inside the event loop that will use it."""

    def __init__(self, upstream: str, *, verify: bool | str = True, timeout: float = 120.0,
                 max_body_bytes: int = 100 * 1024 * 1024) -> None:
        # dsr's own credentials (in the URL) are never lent to callers: each request carries its own
        url = URL(upstream.rstrip("/"))
        self.upstream = url.with_user(None)
        self.origin = str(self.upstream.origin())
        self.base_path = url.raw_path.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, ssl=_ssl_option(verify)),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=CLIENT_DEFAULT_HEADERS,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.session.close()

    def _url(self, request: Request) -> URL:
        raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        qs = request.scope.get("query_string", b"").decode("latin-1")
        return URL(self.origin + self.base_path + raw + (f"?{qs}" if qs else ""), encoded=True)

    async def _stream_body(self, request: Request) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            if chunk:
                yield chunk

    async def forward(self, request: Request, body: bytes | None = None, *,
                      drop_headers: tuple[str, ...] = ()) -> Response:
        """Send `request` upstream (with `body` when it was already read) and relay the answer.

        `drop_headers`: request headers left out (those that no longer describe a `body` dsr rewrote).
        """
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            return _error(BodyTooLarge(self.max_body_bytes))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                   if k.lower() not in HOP_BY_HOP and k.decode("latin-1").lower() not in drop_headers]
        content: bytes | AsyncIterator[bytes] | None
        if body is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            content = body
        elif request.method in ("GET", "HEAD", "DELETE", "OPTIONS") and not declared and \
                b"transfer-encoding" not in {k.lower() for k, _ in request.headers.raw}:
            content = None
        else:  # streamed; a declared Content-Length is relayed with it, so the body is not re-chunked
            content = self._stream_body(request)
        try:
            upstream = await self.session.request(request.method, self._url(request), headers=headers,
                                                  data=content, allow_redirects=False)
        except BodyTooLarge as e:
            return _error(e)
        except (TimeoutError, aiohttp.ServerTimeoutError) as e:
            log.warning("cluster timed out on %s %s: %s", request.method, request.url.path, type(e).__name__)
            return error_response(504, "dsr_upstream_timeout_exception",
                                  f"the cluster did not answer in time ({type(e).__name__})")
        except aiohttp.ClientError as e:
            if isinstance(e.__cause__, BodyTooLarge):
                return _error(e.__cause__)
            log.warning("cluster unreachable for %s %s: %s", request.method, request.url.path,
                        type(e).__name__)
            return error_response(502, "dsr_upstream_unavailable_exception",
                                  f"the cluster at {self.upstream.host}:{self.upstream.port} cannot be "
                                  f"reached ({type(e).__name__})")
        out_headers = [(k, v) for k, v in upstream.raw_headers if k.lower() not in HOP_BY_HOP]
        length = upstream.headers.get("content-length")
        if request.method == "HEAD" or (length is not None and length.isdigit()
                                        and int(length) <= BUFFER_LIMIT):
            try:
                data = await upstream.read()
            except (TimeoutError, aiohttp.ClientError) as e:
                return error_response(502, "dsr_upstream_unavailable_exception",
                                      f"the cluster closed the connection ({type(e).__name__})")
            finally:
                upstream.release()
            response = Response(data, status_code=upstream.status)
            response.raw_headers = out_headers
            return response
        response = StreamingResponse(upstream.content.iter_chunked(STREAM_CHUNK), status_code=upstream.status,
                                     background=BackgroundTask(upstream.release))
        response.raw_headers = out_headers
        return response


def _ssl_option(verify: bool | str) -> ssl.SSLContext | bool:
    """aiohttp's `ssl`: False skips verification, a CA bundle path builds a context, True the default."""
    if verify is False:
        return False
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return True


def _error(e: RequestError) -> Response:
    return error_response(e.status, e.error_type, e.reason)
