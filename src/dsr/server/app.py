"""The ASGI app of `dsr serve`: an Elasticsearch-compatible endpoint in front of the cluster.

`create_app(settings)` builds everything once (backend client, encoder, sidecar, ranker, the HTTP
client of the proxy) and keeps it on the app, never in module globals. Routes:

* `GET|POST /{index}/_search[/]` with an `ext.dsr` object in the body: answered by the hybrid
  searcher in the normal search response shape, when `{index}` is the served index or an alias,
  list or pattern that resolves to exactly the index it stands for now (`dsr.server.targets`: an
  alias swap is followed, each index searched with its own sidecar); any other target is a 400
  that says why. The body is read as the engines read it
  (`dsr.server.search_input`: compressed, escaped, or in the `source` URL parameter; strict JSON;
  their media types), and the answer echoes `X-Opaque-Id`.
* `GET|POST /{index}/_search[/]` on an index the serve configuration answers hybrid
  (`dsr.server.serve_config`, `--config` or `--hybrid-by-default`): the shop's own search, unchanged,
  answered hybrid when its query holds a shopper's text (`dsr.server.shop_request`), its aggregations,
  highlights, sorts, pages and collapse computed by the cluster over the hybrid candidates
  (`dsr.search.shop_search`); `ext.dsr` options override, `"enabled": false` opts out. A search
  with `ext.dsr` that asks for more than the hits takes the same path. One that cannot be answered
  hybrid is passed to the cluster untouched, with `X-Dsr-Path: passthrough` and `X-Dsr-Reason`;
  a hybrid answer carries `X-Dsr-Path: hybrid`.
* `GET|POST [/{index}]/_msearch`: entries answered hybrid as above run hybrid, the others go to the
  cluster in one `_msearch`, answered in order (`dsr.server.msearch`).
* everything else: passed to the cluster unchanged (a search without `ext.dsr` byte for byte).
  Document writes to the served index are then followed into its sidecar (`dsr.server.writes`),
  after their answer is sent, when `create_app` is given `follow`.
* `GET /_dsr/` and `/_dsr/api/...`: the relevance workbench, its page and JSON API (`dsr.server.workbench`),
  whose searches are `ext.dsr` searches of the served index with the caller's credentials.
* `GET /_dsr/stats`: per served index, the write-through's backlog, its lag and the applied and
  failed counts.

Both reach the cluster with the caller's own credentials, never dsr's: the proxy forwards the
caller's headers, and a hybrid search sends the caller's `Authorization` and `Cookie` (`Caller`) with
every request it makes (the term search, the engine's kNN and similarity lookups, `mget`). So the
cluster's security decides what a caller sees, document and field level security included, and a
caller the cluster refuses gets the cluster's 401 or 403. dsr's own credentials (`ConnectionSettings`)
are for its own jobs. On a cluster without security a caller without credentials searches as anyone
does; the embedded backend has no security, and its searches take no caller at all.

With the embedded backend there is no cluster to pass to; only `GET /` and dsr searches are served
and anything else is a 501 that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dsr.backends.base import Caller
from dsr.backends.client_options import ClientOptions
from dsr.errors import (
    DsrError,
    EngineAuthError,
    EngineError,
    EngineOverloaded,
    EngineTimeout,
    EngineUnavailable,
    IndexNotFound,
    UsageError,
)
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchDefaults
from dsr.search.shop_search import ShopAnswer, ShopSearcher, ShopSearchRequest, without_dsr_ext
from dsr.server.admission import Admission
from dsr.server.body import Unreadable, content_codings, decompress, may_hold_dsr
from dsr.server.configured import ConfiguredIndexes
from dsr.server.dsr_request import (
    ExtOptions,
    check_body,
    has_dsr_ext,
    is_plain_dsr_request,
    parse_dsr_request,
    parse_ext_options,
)
from dsr.server.errors import RequestError, error_body, error_response, request_error_response
from dsr.server.media import COMPATIBLE, JSON, MediaType, MediaTypeNotSupported, not_supported_response
from dsr.server.msearch import HYBRID_HEADER_KEYS, MSEARCH_TYPES, MsearchEntry, assemble, cluster_part, read_msearch
from dsr.server.proxy import BodyTooLarge, Proxy
from dsr.server.response import search_response
from dsr.server.search_input import SearchInput, read_search, worth_reading
from dsr.server.serve_config import ServedEntry
from dsr.server.settings import ServeSettings
from dsr.server.shop_request import NotHybrid, shop_search_request
from dsr.server.targets import ResolutionFailed, ServedIndex, TargetRefused, served_index, startup_index
from dsr.server.workbench import workbench_routes
from dsr.server.writes import MAX_READ_ANSWER, WriteThrough, is_write
from dsr.settings import ConnectionSettings

log = logging.getLogger(__name__)

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
INLINE_READ_BYTES = 64 * 1024  # bodies dsr reads larger than this are parsed in a worker thread


class DsrApp:
    """The request handlers, holding the searcher and the proxy they share."""

    def __init__(self, settings: ServeSettings, searcher: HybridSearcher, follow: Follow | None = None) -> None:
        self.settings = settings
        self.searcher = searcher
        self.follow = follow
        self.writes: WriteThrough | None = None
        self.backend = searcher.backend
        self.served = served_index(settings, searcher)  # the first (or only) served index
        self.indexes = ConfiguredIndexes(settings.served_entries(), self.served, self._make_served)
        self.proxy: Proxy | None = None
        self.admission = Admission(settings.max_cluster_requests, settings.max_queued_searches)
        # Elasticsearch clients refuse 2xx answers without this header; dsr's own answers carry it too
        self.product_headers = ({"X-Elastic-Product": "Elasticsearch"}
                                if getattr(self.backend, "flavor", None) == "elasticsearch" else {})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if not self.settings.embedded:
            assert self.settings.connection.engine_url is not None
            verify = ClientOptions.from_settings(self.settings.connection).verify
            self.proxy = Proxy(self.settings.connection.engine_url, verify=verify,
                               timeout=self.settings.upstream_timeout_s,
                               max_body_bytes=self.settings.max_body_bytes)
            self.writes = self._write_through()
            if self.writes is not None:
                self.writes.start()
        try:
            yield
        finally:
            if self.proxy is not None:
                await self.proxy.aclose()
            if self.writes is not None:
                await run_in_threadpool(self.writes.close)
            self.indexes.close()

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
        target = request.path_params["index"]
        entry = self.indexes.entry_for(target) if self.proxy is not None else None
        plain = entry is not None and entry.hybrid  # its plain searches are answered hybrid
        incoming: SearchInput | None = None
        # cheap test first: a plain search on an index not answered hybrid is relayed without being parsed
        if plain or worth_reading(request.headers, request.scope.get("query_string", b""), body):
            try:
                incoming = await self._read_search(request, body, plain=plain)
            except MediaTypeNotSupported as e:
                if not plain:
                    return self._dsr_answer(request, not_supported_response(e))
            except RequestError as e:
                if not plain:
                    return self._dsr_answer(request, request_error_response(e))
        if incoming is None:
            if self.proxy is None:
                return error_response(501, "dsr_not_supported_exception",
                                      "the embedded backend answers only searches with an ext.dsr object "
                                      "(there is no cluster to pass other requests to)")
            response = await self.proxy.forward(request, body)
            return _path_headers(response, "the body is not JSON dsr reads") if plain else response
        ext: ExtOptions | None = None
        if incoming.has_ext:
            try:
                check_body(incoming.body, self.settings.limits)
                ext = parse_ext_options(incoming.body["ext"]["dsr"], self.settings.limits)
            except RequestError as e:
                return self._dsr_answer(request, request_error_response(e))
            if not ext.enabled:  # opted out: the shop's search without dsr's part of it
                return await self._relay_without_ext(request, incoming, entry is not None)
            if ext.text is not None and is_plain_dsr_request(incoming.body, incoming.params):
                response = await self.hybrid_search(request, incoming.body, incoming.params)
                return self._dsr_answer(request, response, incoming.media)
        try:
            shop = shop_search_request(incoming.body, incoming.params, self.settings.limits, entry=entry, ext=ext)
        except NotHybrid as e:  # the shop's plain search, for the cluster
            return _path_headers(await self.proxy.forward(request, body), str(e))  # type: ignore[union-attr]
        except RequestError as e:
            return self._dsr_answer(request, request_error_response(e))
        response = await self.shop_search(request, target, shop, ext is not None)
        return self._dsr_answer(request, response, incoming.media)

    async def msearch(self, request: Request) -> Response:
        """`_msearch`: entries on indexes answered hybrid run hybrid, the rest go to the cluster in one request."""
        try:
            body = await self._read_body(request)
        except RequestError as e:
            return request_error_response(e)
        if self.proxy is None:
            return error_response(501, "dsr_not_supported_exception", "the embedded backend answers only "
                                  "single searches with an ext.dsr object, not _msearch")
        if not (self.indexes.any_hybrid or may_hold_dsr(body) or "content-encoding" in request.headers):
            return await self.proxy.forward(request, body)  # nothing in it can be dsr's: relayed unread
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        try:
            raw = decompress(body, content_codings(request.headers.get("content-encoding")),
                             self.settings.max_body_bytes)
        except (RequestError, Unreadable):
            raw = None
        entries = read_msearch(raw, request.path_params.get("index")) if raw is not None and \
            content_type in MSEARCH_TYPES else None
        if entries is None:
            return await self.proxy.forward(request, body)
        url_params = {k: v for k, v in request.query_params.items() if k in ("typed_keys", "rest_total_hits_as_int")}
        answers: list[dict[str, Any] | None] = [None] * len(entries)
        hybrid: dict[int, tuple[str, ShopSearchRequest, bool]] = {}
        plain: list[int] = []
        rewritten = False  # an entry's ext.dsr was taken out (it opted out)
        for i, entry in enumerate(entries):
            decided = self._msearch_entry(entry, url_params)
            if isinstance(decided, dict):
                answers[i] = decided
            elif isinstance(decided, MsearchEntry):
                rewritten = rewritten or decided is not entry
                entries[i] = decided
                plain.append(i)
            else:
                hybrid[i] = decided
        if not hybrid and not rewritten and all(a is None for a in answers):
            return await self.proxy.forward(request, body)  # every entry is the cluster's: as it came
        started = time.perf_counter()
        cluster = self._msearch_cluster_part(request, [entries[i] for i in plain])
        searches = [self.shop_search(request, target, shop, asked) for target, shop, asked in hybrid.values()]
        cluster_task = asyncio.ensure_future(cluster)  # the cluster's part runs while the hybrid searches do
        hybrid_answers = await asyncio.gather(*searches)
        cluster_answer = await cluster_task
        if isinstance(cluster_answer, Response):  # the cluster refused its part as a whole
            return cluster_answer
        for i, answer in zip(plain, cluster_answer, strict=True):
            answers[i] = answer
        for i, response in zip(hybrid, hybrid_answers, strict=True):
            payload = json.loads(bytes(response.body))
            answers[i] = {**payload, "status": response.status_code} if response.status_code == 200 else payload
        content = assemble([a or {} for a in answers], int((time.perf_counter() - started) * 1000))
        response = Response(content, media_type=_answer_type(request.headers.get("accept")),
                            headers={"X-Dsr-Path": "hybrid"})
        return self._dsr_answer(request, response)

    def _msearch_entry(self, entry: MsearchEntry, url_params: Mapping[str, str]
                       ) -> tuple[str, ShopSearchRequest, bool] | MsearchEntry | dict[str, Any]:
        """An `_msearch` entry: a hybrid search to run, the entry for the cluster, or an error answer."""
        has_ext = has_dsr_ext(entry.body)
        configured = self.indexes.entry_for(entry.target) if entry.target is not None else None
        if not has_ext and (configured is None or not configured.hybrid or not entry.hybrid_header):
            return entry
        try:
            if entry.target is None or not entry.hybrid_header:
                raise RequestError("a hybrid search in _msearch names one index and no header keys but "
                                   f"{sorted(HYBRID_HEADER_KEYS)}")
            ext = None
            if has_ext:  # a plain entry's body is checked as a plain search's is (shop_search_request)
                check_body(entry.body, self.settings.limits)
                ext = parse_ext_options(entry.body["ext"]["dsr"], self.settings.limits)
            if ext is not None and not ext.enabled:
                return _without_ext(entry)
            shop = shop_search_request(entry.body, {**url_params, **entry.params}, self.settings.limits,
                                       entry=configured, ext=ext)
        except NotHybrid:
            return entry
        except RequestError as e:
            return error_body(e.status, e.error_type, e.reason)
        return entry.target, shop, has_ext

    async def _msearch_cluster_part(self, request: Request, entries: list[MsearchEntry]
                                    ) -> list[dict[str, Any]] | Response:
        """The cluster's answers to its entries (one `_msearch`), or its answer when it refused them all."""
        if not entries:
            return []
        assert self.proxy is not None
        # decoded, and answered uncompressed, since dsr reads the answer
        response = await self.proxy.forward(request, cluster_part(entries),
                                            drop_headers=("content-encoding", "accept-encoding"))
        data = bytes(response.body) if not isinstance(response, StreamingResponse) else b"".join(
            [c.encode() if isinstance(c, str) else bytes(c) async for c in response.body_iterator])
        try:
            answers = json.loads(data).get("responses") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            answers = None
        if not isinstance(answers, list) or len(answers) != len(entries):
            out = Response(data, status_code=response.status_code)
            out.raw_headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"content-length"]
            return out
        return answers

    async def _relay_without_ext(self, request: Request, incoming: SearchInput, configured: bool) -> Response:
        """The search with `ext.dsr` taken out (the cluster refuses an ext section it does not know)."""
        if self.proxy is None:
            return error_response(400, "illegal_argument_exception", "[ext.dsr.enabled] is false, and the "
                                  "embedded backend answers only hybrid searches")
        response = await self.proxy.forward(request, json.dumps(without_dsr_ext(incoming.body)).encode())
        return _path_headers(response, "ext.dsr.enabled is false") if configured else response

    async def shop_search(self, request: Request, target: str, shop: ShopSearchRequest, asked: bool) -> Response:
        """A shop's search answered hybrid: the cluster's answer over the hybrid candidates (`ShopSearcher`)."""
        search = shop.search
        if not self.settings.embedded:
            shop = replace(shop, search=replace(search, caller=Caller.from_headers(request.headers.items())))
        try:
            async with self.admission.slot():
                _, answer, warning = await run_in_threadpool(self._run_shop, target, shop, asked)
        except (TargetRefused, ResolutionFailed, DsrError) as e:
            return self._failed_search(e, shop.search.caller)
        result = answer.result
        warnings = (warning, *result.warnings) if warning else result.warnings
        headers = self._result_headers(warnings, result.degraded or warning is not None)
        pretty = shop.params.get("pretty", "false") in ("true", "")
        content = json.dumps(answer.response, indent=2 if pretty else None).encode()
        return Response(content, media_type="application/json", headers=headers)

    def _run_shop(self, target: str, shop: ShopSearchRequest, asked: bool) -> tuple[str, ShopAnswer, str | None]:
        served = self.indexes.for_ext_search(target) if asked else self.indexes.served_for(target)
        if served is None:
            raise TargetRefused(f"[{target}] is not an index dsr serves hybrid")
        if isinstance(served, tuple):
            served = served[1]
        return served.run_with(target, lambda searcher: ShopSearcher(searcher).run(shop))

    def _make_served(self, entry: ServedEntry, name: str) -> ServedIndex:
        """The `ServedIndex` of a configured entry's name: its searcher built with the entry's models."""
        from dsr.server.components import build_searcher

        settings = self.settings.for_entry(entry)
        depths = SearchDefaults(term_k=entry.term_k, knn_k=entry.k, rerank_top=entry.rerank_top, fusion=entry.fusion)
        index = startup_index(name, getattr(self.backend, "resolve_index", None))
        searcher = build_searcher(replace(settings, index=name), backend=self.backend, index=index, depths=depths)
        return served_index(replace(settings, index=name), searcher)

    def _result_headers(self, warnings: tuple[str, ...], degraded: bool) -> dict[str, str]:
        headers = {"X-Dsr-Path": "hybrid"}
        if warnings:
            # RFC 7234 warn-code 299 ("miscellaneous persistent warning"), as Elasticsearch uses it;
            # a header value must be one line of latin-1, so anything else is replaced
            text = " ".join(self._redact("; ".join(warnings)).replace('"', "'").split())
            headers["Warning"] = '299 dsr "' + text.encode("ascii", "replace").decode("ascii")[:2000] + '"'
        if degraded:
            headers["X-Dsr-Degraded"] = "true"
        return headers

    async def _read_search(self, request: Request, body: bytes, *, plain: bool = False) -> SearchInput | None:
        read = functools.partial(read_search, request.headers, request.query_params, body,
                                 limit=self.settings.max_body_bytes, relay=self.proxy is not None,
                                 dsr_limit=self.settings.limits.max_request_bytes, plain=plain,
                                 flavor=str(getattr(self.backend, "flavor", "elasticsearch")))
        if len(body) > INLINE_READ_BYTES:  # a large body is parsed off the event loop
            return await run_in_threadpool(read)
        return read()

    def _dsr_answer(self, request: Request, response: Response, media: MediaType | None = None) -> Response:
        """An answer of dsr's own, with the headers the engines put on theirs."""
        for name, value in self.product_headers.items():
            response.headers.setdefault(name, value)
        opaque_id = request.headers.get("x-opaque-id")
        if opaque_id is not None:
            response.headers["X-Opaque-Id"] = opaque_id
        if media is not None and media.answer != JSON:
            response.headers["content-type"] = media.answer
        return response

    async def hybrid_search(self, request: Request, body: dict[str, Any], params: Mapping[str, str]) -> Response:
        started = time.perf_counter()
        target = request.path_params["index"]
        try:
            req = parse_dsr_request(body, params, self.settings.limits)
        except RequestError as e:
            return request_error_response(e)
        search = req.search
        if not self.settings.embedded:  # a cluster: the caller's credentials, as the proxy forwards them
            search = replace(search, caller=Caller.from_headers(request.headers.items()))
        try:
            async with self.admission.slot():
                served = await run_in_threadpool(self.indexes.for_ext_search, target)
                answer = await run_in_threadpool(served.run, target, search)
        except (TargetRefused, ResolutionFailed, DsrError) as e:
            return self._failed_search(e, search.caller)
        took = int((time.perf_counter() - started) * 1000)
        result = answer.result
        payload = search_response(result, req, answer.index, took)
        headers = self._result_headers(result.warnings, result.degraded)
        content = json.dumps(payload, indent=2 if req.pretty else None).encode()
        return Response(content, media_type="application/json", headers=headers)

    def _failed_search(self, e: Exception, caller: Caller | None) -> Response:
        """The answer to a hybrid search that failed: refused targets and the caller's own mistakes are
        400s, the cluster's refusals of the caller are the cluster's, anything else of dsr's a 500."""
        if isinstance(e, TargetRefused):
            return error_response(400, "illegal_argument_exception", str(e))
        if isinstance(e, ResolutionFailed):  # dsr's own request to the cluster, not the caller's
            return self._engine_error_response(e.error)
        if isinstance(e, EngineAuthError):
            return self._engine_error_response(e) if caller is None else _refused_caller(e)
        if isinstance(e, EngineError):
            return self._engine_error_response(e)
        if isinstance(e, UsageError):
            return error_response(400, "illegal_argument_exception", self._redact(str(e)))
        log.error("dsr search failed: %s", self._redact(str(e)))
        return error_response(500, "dsr_exception", self._redact(str(e)))

    def _engine_error_response(self, e: EngineError) -> Response:
        """The answer to a search the cluster (or dsr's own bound on it) failed.

        The cluster's refusals of the request (4xx, 429 included) are answered as the cluster answered
        them, status and `error` object, so a client sees what it would see from the cluster directly;
        a 429 also says when to retry. The cluster's own failures (5xx), an unreachable cluster and
        refused credentials are dsr's upstream's: a 502 naming the cluster; no answer in time is a 504.
        """
        if isinstance(e, EngineTimeout):
            return error_response(504, "dsr_upstream_timeout_exception",
                                  f"the cluster did not answer in time: {self._redact(str(e))}")
        if isinstance(e, EngineUnavailable):
            return error_response(502, "dsr_upstream_unavailable_exception",
                                  f"cluster unavailable: {self._redact(str(e))}")
        if isinstance(e, EngineAuthError):
            return error_response(502, "dsr_upstream_auth_exception",
                                  f"the cluster refused dsr's credentials: {self._redact(str(e))}")
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
        if e.status is not None and 400 <= e.status < 500 and e.error:
            return JSONResponse({"error": e.error, "status": e.status}, status_code=e.status, headers=headers)
        if isinstance(e, EngineOverloaded):  # dsr's own queue is full
            return error_response(429, "dsr_rejected_execution_exception", self._redact(str(e)), headers)
        if isinstance(e, IndexNotFound):
            return error_response(404, "index_not_found_exception", self._redact(str(e)))
        log.warning("the cluster failed a dsr search: %s", self._redact(str(e)))
        return error_response(502, "dsr_upstream_exception", f"the cluster failed the search: {self._redact(str(e))}")

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
        response = await self.proxy.forward(request)
        if self.writes is not None and is_write(request.method, request.url.path):
            self._follow_answer(response, self.writes)
        return response

    def _write_through(self) -> WriteThrough | None:
        """The write-through of the served index: a local sidecar, a model and a follower are needed."""
        vectors = getattr(self.searcher, "vectors", None)
        directory = getattr(vectors, "directory", None)
        encoder = getattr(self.searcher, "encoder", None)
        if self.follow is None or directory is None or encoder is None or not hasattr(vectors, "refresh"):
            return None
        index = self.searcher.index
        follower = self.follow(self.settings.connection, index, directory, encoder, self.settings.index)
        backlogs = Path(self.settings.connection.data_dir) / "follow"
        # a name of its own per process and app: a backlog left by one that is gone is taken over by the next
        return WriteThrough(index, follower, backlogs, f"{os.getpid()}-{uuid.uuid4().hex[:8]}", vectors=vectors,
                            reload_s=self.settings.reload_s)

    def _follow_answer(self, response: Response, writes: WriteThrough) -> None:
        """Once `response` is sent, hand its body to the write-through (which reads it for ids in a thread)."""
        status = response.status_code
        encoding = response.headers.get("content-encoding")
        if isinstance(response, StreamingResponse):  # a large answer: kept as it streams by
            chunks: list[bytes] = []
            seen = [0]
            source = response.body_iterator

            async def tee() -> AsyncIterator[Any]:
                async for chunk in source:
                    seen[0] += len(chunk)
                    if seen[0] <= MAX_READ_ANSWER:
                        chunks.append(chunk.encode() if isinstance(chunk, str) else bytes(chunk))
                    yield chunk

            response.body_iterator = tee()
            release = response.background

            async def after() -> None:
                if release is not None:
                    await release()
                if seen[0] <= MAX_READ_ANSWER:
                    writes.submit(status, b"".join(chunks), encoding)
            response.background = BackgroundTask(after)
        else:
            body = bytes(response.body)

            async def hand_over() -> None:  # async: a plain function would cost a hop to a worker thread
                writes.submit(status, body, encoding)
            response.background = BackgroundTask(hand_over)

    async def stats(self, request: Request) -> Response:
        indices = {}
        if self.writes is not None:
            indices[self.writes.index] = await run_in_threadpool(self.writes.stats)
        return JSONResponse({"write_through": self.writes is not None, "indices": indices},
                            headers=self.product_headers)


def _without_ext(entry: MsearchEntry) -> MsearchEntry:
    """An `_msearch` entry with `ext.dsr` taken out, for the cluster (which refuses an unknown ext section)."""
    body = without_dsr_ext(entry.body)
    lines = json.dumps(entry.header).encode() + b"\n" + json.dumps(body).encode() + b"\n"
    return MsearchEntry(entry.header, body, lines, entry.target)


def _answer_type(accept: str | None) -> str:
    """The media type of an answer of dsr's own to a request that accepts `accept`."""
    first = (accept or "").split(",")[0].strip()
    return first if first.lower().startswith(COMPATIBLE) else JSON


def _path_headers(response: Response, reason: str) -> Response:
    """A configured index's search the cluster answered: say so, and why it was not answered hybrid."""
    text = " ".join(reason.split()).encode("ascii", "replace").decode("ascii")[:500]
    response.raw_headers = [*response.raw_headers, (b"x-dsr-path", b"passthrough"),
                            (b"x-dsr-reason", text.encode("latin-1"))]
    return response


def _refused_caller(e: EngineAuthError) -> Response:
    """The cluster's own refusal of a caller's credentials (401) or rights (403), as the cluster gave it."""
    status = e.status if e.status in (401, 403) else 401
    if e.error:
        return JSONResponse({"error": e.error, "status": status}, status_code=status)
    kind = "missing or refused credentials" if status == 401 else "not allowed with the caller's rights"
    return error_response(status, "security_exception", f"the cluster refused the search: {kind}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dsr")
    except PackageNotFoundError:
        return "0"


Follow = Callable[[ConnectionSettings, str, Path, Any, str], Any]
"""Makes the follower of the served index (`dsr.ingest.follow.follower_for`): connection, concrete index,
sidecar directory, item encoder, the index as named."""


def create_app(settings: ServeSettings, *, searcher: HybridSearcher | None = None,
               follow: Follow | None = None) -> Starlette:
    """The dsr serve app. `searcher` overrides the one built from the settings (tests, embedding);
    `follow` turns on the write-through of the served index into its sidecar."""
    if searcher is None:
        from dsr.server.components import build_searcher, connect_backend

        backend = connect_backend(settings)
        index = startup_index(settings.index, getattr(backend, "resolve_index", None))
        first = settings.served_entries()[0]
        depths = SearchDefaults(term_k=first.term_k, knn_k=first.k, rerank_top=first.rerank_top, fusion=first.fusion)
        searcher = build_searcher(settings, backend=backend, index=index, depths=depths)
    handlers = DsrApp(settings, searcher, follow)
    routes = [
        Route("/", handlers.root, methods=["GET", "HEAD"]),
        Route("/_dsr/stats", handlers.stats, methods=["GET"]),
        Route("/{index}/_search", handlers.search, methods=["GET", "POST"]),
        Route("/{index}/_search/", handlers.search, methods=["GET", "POST"]),
        Route("/_msearch", handlers.msearch, methods=["GET", "POST"]),
        Route("/{index}/_msearch", handlers.msearch, methods=["GET", "POST"]),
        *workbench_routes(handlers, settings.judgments),  # the page at /_dsr/ and its API, /_dsr/api/...
        Route("/{path:path}", handlers.passthrough, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=handlers.lifespan)
    app.state.dsr = handlers
    return app
