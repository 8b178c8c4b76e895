"""The ASGI app of `dsr serve`: an Elasticsearch-compatible endpoint in front of the cluster.

`create_app(settings)` builds everything once (backend client, encoder, sidecar, ranker, the HTTP
client of the proxy) and keeps it on the app, never in module globals. Routes:

* `GET|POST /{index}/_search` with an `ext.dsr` object in the body: answered by the hybrid searcher
  in the normal search response shape.
* everything else: passed to the cluster unchanged (a search without `ext.dsr` byte for byte).

With the embedded backend there is no cluster to pass to; only `GET /` and dsr searches are served
and anything else is a 501 that says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dsr.backends.client_options import ClientOptions
from dsr.errors import (
    DsrError,
    EngineAuthError,
    EngineError,
    EngineUnavailable,
    IndexNotFound,
    UsageError,
)
from dsr.search.hybrid import HybridSearcher
from dsr.server.dsr_request import has_dsr_ext, parse_dsr_request
from dsr.server.errors import RequestError, error_response, request_error_response
from dsr.server.proxy import BodyTooLarge, Proxy
from dsr.server.response import search_response
from dsr.server.settings import ServeSettings

log = logging.getLogger(__name__)

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


class DsrApp:
    """The request handlers, holding the searcher and the proxy they share."""

    def __init__(self, settings: ServeSettings, searcher: HybridSearcher) -> None:
        self.settings = settings
        self.searcher = searcher
        self.proxy: Proxy | None = None
        # Elasticsearch clients refuse 2xx answers without this header; dsr's own answers carry it too
        self.product_headers = ({"X-Elastic-Product": "Elasticsearch"}
                                if getattr(searcher.backend, "flavor", None) == "elasticsearch" else {})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if not self.settings.embedded:
            assert self.settings.connection.engine_url is not None
            verify = ClientOptions.from_settings(self.settings.connection).verify
            self.proxy = Proxy(self.settings.connection.engine_url, verify=verify,
                               timeout=self.settings.upstream_timeout_s,
                               max_body_bytes=self.settings.max_body_bytes)
        try:
            yield
        finally:
            if self.proxy is not None:
                await self.proxy.aclose()
            self.searcher.close()

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        limit = self.settings.max_body_bytes
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        chunks = []
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def search(self, request: Request) -> Response:
        try:
            body = await self._read_body(request)
        except RequestError as e:
            return request_error_response(e)
        parsed: Any = None
        # cheap test first: a plain search is relayed without being parsed
        if b'"dsr"' in body and b'"ext"' in body:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        if not has_dsr_ext(parsed):
            if self.proxy is None:
                return error_response(501, "dsr_not_supported_exception",
                                      "the embedded backend answers only searches with an ext.dsr object "
                                      "(there is no cluster to pass other requests to)")
            return await self.proxy.forward(request, body)
        response = await self.hybrid_search(request, parsed)
        for name, value in self.product_headers.items():
            response.headers.setdefault(name, value)
        return response

    async def hybrid_search(self, request: Request, body: dict[str, Any]) -> Response:
        started = time.perf_counter()
        index = request.path_params["index"]
        if index != self.settings.index:
            return error_response(400, "illegal_argument_exception",
                                  f"ext.dsr searches are served for index [{self.settings.index}] only, "
                                  f"not [{index}]")
        try:
            req = parse_dsr_request(body, dict(request.query_params), self.settings.limits)
        except RequestError as e:
            return request_error_response(e)
        try:
            result = await run_in_threadpool(self.searcher.run, req.search)
        except IndexNotFound as e:
            return error_response(404, "index_not_found_exception", self._redact(str(e)))
        except EngineUnavailable as e:
            return error_response(502, "dsr_upstream_unavailable_exception",
                                  f"cluster unavailable: {self._redact(str(e))}")
        except EngineAuthError as e:
            return error_response(502, "dsr_upstream_auth_exception",
                                  f"the cluster refused dsr's credentials: {self._redact(str(e))}")
        except EngineError as e:
            return error_response(502, "dsr_upstream_exception",
                                  f"the cluster failed the search: {self._redact(str(e))}")
        except UsageError as e:
            return error_response(400, "illegal_argument_exception", self._redact(str(e)))
        except DsrError as e:
            log.error("dsr search failed: %s", self._redact(str(e)))
            return error_response(500, "dsr_exception", self._redact(str(e)))
        took = int((time.perf_counter() - started) * 1000)
        payload = search_response(result, req, index, took)
        headers = {}
        if result.warnings:
            # RFC 7234 warn-code 299 ("miscellaneous persistent warning"), as Elasticsearch uses it;
            # a header value must be one line of latin-1, so anything else is replaced
            text = " ".join(self._redact("; ".join(result.warnings)).replace('"', "'").split())
            headers["Warning"] = '299 dsr "' + text.encode("ascii", "replace").decode("ascii")[:2000] + '"'
        if result.degraded:
            headers["X-Dsr-Degraded"] = "true"
        content = json.dumps(payload, indent=2 if req.pretty else None).encode()
        return Response(content, media_type="application/json", headers=headers)

    def _redact(self, text: str) -> str:
        """`text` without the credentials a cluster URL may carry (`https://user:secret@host`)."""
        url = self.settings.connection.engine_url
        if url and "@" in url:
            scheme, _, rest = url.partition("://")
            text = text.replace(url, f"{scheme}://{rest.rpartition('@')[2]}")
        for secret in (self.settings.connection.password, self.settings.connection.api_key):
            if secret:
                text = text.replace(secret, "***")
        return text

    async def root(self, request: Request) -> Response:
        if self.proxy is not None:
            return await self.proxy.forward(request)
        return JSONResponse({
            "name": "dsr",
            "cluster_name": "embedded",
            "version": {"distribution": "dsr-embedded", "number": _version()},
            "tagline": "dsr: hybrid product search (embedded backend; only ext.dsr searches are served)",
        })

    async def passthrough(self, request: Request) -> Response:
        if self.proxy is None:
            return error_response(501, "dsr_not_supported_exception",
                                  f"{request.method} {request.url.path} is not available: the embedded "
                                  "backend serves only GET / and searches with ext.dsr")
        return await self.proxy.forward(request)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dsr")
    except PackageNotFoundError:
        return "0"


def create_app(settings: ServeSettings, *, searcher: HybridSearcher | None = None) -> Starlette:
    """The dsr serve app. `searcher` overrides the one built from the settings (tests, embedding)."""
    if searcher is None:
        from dsr.server.components import build_searcher

        searcher = build_searcher(settings)
    handlers = DsrApp(settings, searcher)
    routes = [
        Route("/", handlers.root, methods=["GET", "HEAD"]),
        Route("/{index}/_search", handlers.search, methods=["GET", "POST"]),
        Route("/{path:path}", handlers.passthrough, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=handlers.lifespan)
    app.state.dsr = handlers
    return app
