"""The workbench's JSON API under `/_dsr/api/`, and the page at `/_dsr/`.

Endpoints (every body is JSON; `GET /_dsr/api` lists them):

* `GET  /_dsr/api/info`: the served index, the engine, the vector side, the ranker, the pipelines
  and the limits a column must keep, and the judgments' counts.
* `POST /_dsr/api/search` `{text, user_id?, user?, filters?, size?, columns: [...]}`: each column's
  hits, each with its rank and score at every stage (term, vector, fused, ranker), its place in the
  other columns, "only here", its grade; and the column's NDCG@10, recall@100, MRR@10, unjudged share.
* `POST /_dsr/api/explain` `{text, user_id?, user?, filters?, column, id}`: for a hit of the column's
  search, the cluster's explanation of its term score, its DSR similarity, and the ranker's inputs
  that moved its score most.
* `POST /_dsr/api/metrics` `{text, rankings}`: the metrics of rankings the page holds, after a grade.
* `GET  /_dsr/api/judgments[?query=Q]`, `PUT /_dsr/api/judgments` `{query, item_id, grade}` (grade
  null takes a page grade back; or `{judgments: [...]}`), `GET /_dsr/api/judgments/export` (the tsv
  `dsr eval` and `dsr train ranker` read).
* `POST /_dsr/api/queries` `{columns, ...}`: every judged query scored in each column, worst first.
* `GET  /_dsr/api/cases`, `PUT|DELETE /_dsr/api/cases/{name}` `{queries}`, and
  `POST /_dsr/api/case` `{name | queries, columns, ...}`: a named set of queries scored per column.

The page has no power the proxy itself would not grant: its searches are `ext.dsr` searches of the
served index, parsed by the same parser within the same limits, run in the same admission slots, and
on a cluster every request they make carries the caller's own credentials
(`Caller.from_headers(request.headers.items())`) and none of dsr's, as `DsrApp.hybrid_search`
sends them. On the embedded index, which has no security, they carry none.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dsr.backends.base import Caller
from dsr.errors import DsrError, EngineAuthError, EngineError, UsageError
from dsr.search.request import SearchRequest
from dsr.search.result import HybridHit
from dsr.search.vector import VectorSide
from dsr.server.targets import Answer, ResolutionFailed, TargetRefused
from dsr.server.workbench.cases import CaseStore
from dsr.server.workbench.columns import DEPTH, MAX_COLUMNS, PIPELINES, Column, parse_column, parse_columns
from dsr.server.workbench.compare import image_url, moves, only_here
from dsr.server.workbench.explain import candidates_of, head_of, query_vector, term_explanation
from dsr.server.workbench.judgments import JudgmentStore, check_judgment, clean_query
from dsr.server.workbench.metrics import ColumnMetrics, column_metrics, mean_metrics
from dsr.server.workbench.ranker_inputs import explain_candidate
from dsr.server.workbench.web import (
    Refused,
    check_origin,
    error_json,
    file_response,
    json_response,
    read_json,
    secured,
)

if TYPE_CHECKING:
    from dsr.server.app import DsrApp

MAX_SHOWN = 50  # hits a column shows
DEFAULT_SHOWN = 10
MAX_SCORED_QUERIES = 1000

ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/_dsr/", "the workbench page"),
    ("GET", "/_dsr/api", "this list"),
    ("GET", "/_dsr/api/info", "the served index, engine, vector side, ranker, pipelines, limits, judgment counts"),
    ("POST", "/_dsr/api/search", "{text, user_id?, user?, filters?, size?, columns: [...]} -> each column's hits "
                                 "with stage scores, moves, only-here marks, grades and metrics"),
    ("POST", "/_dsr/api/explain", "{text, user_id?, user?, filters?, column, id} -> term explanation, DSR "
                                  "similarity, ranker inputs"),
    ("POST", "/_dsr/api/metrics", "{text, rankings: [[item ids]...]} -> each ranking's metrics, no search"),
    ("GET", "/_dsr/api/judgments", "?query=Q -> the judgments in force"),
    ("PUT", "/_dsr/api/judgments", "{query, item_id, grade|null} or {judgments: [...]} -> grade in the page"),
    ("GET", "/_dsr/api/judgments/export", "query<TAB>item_id<TAB>grade, as dsr eval and dsr train ranker read"),
    ("POST", "/_dsr/api/queries", "{columns, user_id?, user?, filters?, limit?} -> judged queries scored, worst first"),
    ("GET", "/_dsr/api/cases", "the cases: name -> queries"),
    ("PUT", "/_dsr/api/cases/{name}", "{queries: [...]} -> the case saved"),
    ("DELETE", "/_dsr/api/cases/{name}", "the case removed"),
    ("POST", "/_dsr/api/case", "{name | queries, columns, user_id?, user?, filters?} -> the case scored per column"),
)

Handler = Callable[[Request], Awaitable[Response]]


class Workbench:
    """The page and its API over one `dsr serve` app (`DsrApp`): its served index, admission and backend."""

    def __init__(self, dsr: DsrApp, judgments: JudgmentStore, cases: CaseStore) -> None:
        self.dsr = dsr
        self.judgments = judgments
        self.cases = cases

    # -- the page --------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        return file_response("index.html")

    async def to_page(self, request: Request) -> Response:
        return RedirectResponse("/_dsr/", status_code=308)

    async def static(self, request: Request) -> Response:
        return file_response(request.path_params["name"])

    # -- what is served --------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return json_response({"endpoints": [{"method": m, "path": p, "doc": d} for m, p, d in ENDPOINTS]})

    async def info(self, request: Request) -> Response:
        settings = self.dsr.settings
        searcher = self.dsr.searcher
        limits = settings.limits
        ranker = searcher.reranker
        pipelines = {name: Column(name, name, ext).config(limits) for name, ext in PIPELINES.items()}
        store = self.judgments
        return json_response({
            "index": settings.index,
            "engine": str(getattr(self.dsr.backend, "flavor", "unknown")),
            "embedded": settings.embedded,
            "vector_source": searcher.vector_source,
            "ranker": type(ranker).__name__ if ranker is not None else None,
            "pipelines": pipelines,
            "max_columns": MAX_COLUMNS,
            "depth": DEPTH,
            "limits": {"max_k": limits.max_k, "default_k": limits.default_k, "max_size": limits.max_size,
                       "max_text_chars": limits.max_text_chars, "max_text_terms": limits.max_text_terms},
            "judgments": {**store.counts(), "loaded_from": store.loaded_from.name if store.loaded_from else None,
                          "store": f"{store.store.parent.name}/{store.store.name}"},
        })

    # -- searches --------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        body = await read_json(request)
        text, user, filters = _query_of(body)
        shown = _int(body.get("size", DEFAULT_SHOWN), "size", 1, MAX_SHOWN)
        columns = parse_columns(body.get("columns"), self.dsr.settings.limits)
        caller = self._caller(request)
        answers = await asyncio.gather(*(self._timed(self._request(c, text, user, filters, caller))
                                         for c in columns))
        rankings = [[h.id for h in answer.result.hits] for answer, _ in answers]
        grades = self.judgments.grades(text)
        out = []
        for n, (column, (answer, took)) in enumerate(zip(columns, answers, strict=True)):
            result = answer.result
            alone = only_here(rankings, n, shown)
            hits = [_hit_json(h, grades.get(h.id), moves(rankings, n, h.id, place), h.id in alone)
                    for place, h in enumerate(result.hits[:shown], start=1)]
            out.append({
                "name": column.name, "config": column.config(self.dsr.settings.limits), "took_ms": took,
                "index": answer.index, "pool": result.pool, "term_hits": result.term_hits,
                "vector_hits": result.vector_hits, "vector_source": result.vector_source,
                "reranked": result.reranked, "degraded": result.degraded, "warnings": list(result.warnings),
                "ranking": rankings[n], "metrics": column_metrics(rankings[n], grades).to_json(), "hits": hits,
            })
        return json_response({"text": text, "judged": len(grades), "columns": out})

    async def explain(self, request: Request) -> Response:
        body = await read_json(request)
        text, user, filters = _query_of(body)
        item_id = body.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise UsageError("[id] must be the item's id (a non-empty string)")
        limits = self.dsr.settings.limits
        column = parse_column(body.get("column"), limits)
        caller = self._caller(request)
        base = column.request(text, user=user, filters=filters, limits=limits)
        depth = max(DEPTH, base.rerank_top or 0)
        req = column.request(text, user=user, filters=filters, limits=limits, depth=depth)
        answer = await self._run(replace(req, caller=caller))
        hits = answer.result.hits
        hit = next((h for h in hits if h.id == item_id), None)
        if hit is None:  # only what the caller's own search returned is explained: nothing is told of the rest
            return json_response(error_json(404, "resource_not_found_exception",
                                            f"[{item_id}] is not among the first {len(hits)} hits of column "
                                            f"[{column.name}] for this query"), 404)
        backend = self.dsr.backend if caller is None else self.dsr.backend.for_caller(caller)
        term = await self._term(backend, answer.index, text, filters, item_id)
        similarity = await self._similarity(backend, answer.index, text, user, hit, item_id)
        ranker = await self._ranker(backend, answer, req, hits, hit)
        return json_response({
            "id": item_id, "column": column.name,
            "hit": _hit_json(hit, self.judgments.grades(text).get(item_id), [], False),
            "term": {**term, "column_has_term_side": bool(req.term_k)},
            "dsr": similarity, "ranker": ranker,
        })

    async def _term(self, backend: Any, index: str, text: str, filters: Mapping[str, Any] | None,
                    item_id: str) -> dict[str, Any]:
        if self.dsr.settings.embedded:
            return {"matched": None, "score": None, "explanation": None,
                    "note": "the embedded index runs no query DSL, so it has no explanation of its term scores"}
        async with self.dsr.admission.slot():
            return await run_in_threadpool(term_explanation, backend, index, text, filters, item_id)

    def _vector_side(self, index: str) -> tuple[VectorSide | None, str | None]:
        """The vector side searches of `index` use, or why there is none to ask."""
        searcher = self.dsr.searcher
        if searcher.encoder is None or searcher.vectors is None:
            return None, "no vector side is served (no query tower or no vectors)"
        if searcher.index != index:
            return None, (f"the served name now stands for [{index}], not [{searcher.index}] as at start; its "
                          "similarities are not looked up here")
        return VectorSide(searcher.encoder, searcher.vectors), None

    async def _similarities(self, backend: Any, index: str, text: str, user: Mapping[str, Any] | None,
                            ids: Sequence[str]) -> tuple[dict[str, float], str | None]:
        side, why = self._vector_side(index)
        if side is None or not ids:
            return {}, why
        encoder = self.dsr.searcher.encoder
        side = side.on(backend)

        def look_up() -> dict[str, float]:
            return side.similarities(query_vector(encoder, text, user), list(ids))

        async with self.dsr.admission.slot():
            return await run_in_threadpool(look_up), None

    async def _similarity(self, backend: Any, index: str, text: str, user: Mapping[str, Any] | None,
                          hit: HybridHit, item_id: str) -> dict[str, Any]:
        if hit.vector is not None:
            return {"similarity": hit.vector.score, "rank": hit.vector.rank, "source": "vector side",
                    "note": "the score of the item among the query's DSR neighbours"}
        found, why = await self._similarities(backend, index, text, user, [item_id])
        if item_id in found:
            return {"similarity": found[item_id], "rank": None, "source": "looked up",
                    "note": "not among the neighbours: its similarity as the searcher looks it up for the ranker"}
        return {"similarity": None, "rank": None, "source": None,
                "note": why or "the vector source holds no vector of this item"}

    async def _ranker(self, backend: Any, answer: Answer, req: SearchRequest, hits: Sequence[HybridHit],
                      hit: HybridHit) -> dict[str, Any]:
        ranker = self.dsr.searcher.reranker
        if ranker is None:
            return {"note": "no ranker is served (dsr serve --ranker)"}
        if not req.rerank:
            return {"note": "this column does not re-rank"}
        if hit.rerank is None:
            return {"note": f"the item is not among the {req.rerank_top} fused candidates the ranker re-orders"}
        head = head_of(hits)
        similarities: dict[str, float] = {}
        if req.knn_k:  # the searcher looks them up only when the vector side ran
            term_only = [h.id for h in head if h.vector is None]
            similarities, _ = await self._similarities(backend, answer.index, req.text, req.user, term_only)
        candidates = candidates_of(head, similarities)
        place = next(n for n, h in enumerate(head) if h.id == hit.id)
        explained = await run_in_threadpool(explain_candidate, ranker, req.text, candidates, place, req.user)
        searched = hit.rerank.score
        return {**explained.to_json(), "search_score": searched, "rank": hit.rerank.rank, "candidates": len(head),
                "reproduced": math.isclose(explained.score, searched, rel_tol=1e-4, abs_tol=1e-4)}

    async def metrics(self, request: Request) -> Response:
        """The metrics of rankings the page already holds, against the judgments as they are now (no search)."""
        body = await read_json(request)
        text, _, _ = _query_of(body)
        rankings = body.get("rankings")
        if (not isinstance(rankings, list) or not 1 <= len(rankings) <= MAX_COLUMNS
                or not all(isinstance(r, list) and all(isinstance(i, str) for i in r) for r in rankings)):
            raise UsageError(f"[rankings] must be a list of 1 to {MAX_COLUMNS} lists of item ids")
        if any(len(r) > DEPTH for r in rankings):
            raise UsageError(f"a ranking is scored on its first {DEPTH} places at most")
        grades = self.judgments.grades(text)
        return json_response({"text": text, "judged": len(grades),
                              "metrics": [column_metrics(r, grades).to_json() for r in rankings]})

    # -- judgments -------------------------------------------------------------------------
    async def get_judgments(self, request: Request) -> Response:
        query = request.query_params.get("query")
        rows = self.judgments.judgments(query)
        return json_response({"judgments": [j.to_json() for j in rows], "counts": dict(self.judgments.counts())})

    async def put_judgments(self, request: Request) -> Response:
        body = await read_json(request)
        raw = body.get("judgments", [body])
        if not isinstance(raw, list) or not raw or not all(isinstance(r, dict) for r in raw):
            raise UsageError("[judgments] must be a list of {query, item_id, grade} objects")
        changes = [check_judgment(r.get("query"), r.get("item_id"), r.get("grade")) for r in raw]
        await run_in_threadpool(self.judgments.set_many, changes)
        now = []
        for query, item_id, _ in changes:
            grade = self.judgments.grades(query).get(item_id)
            now.append({"query": query, "item_id": item_id, "grade": grade})
        return json_response({"judgments": now, "counts": dict(self.judgments.counts())})

    async def export(self, request: Request) -> Response:
        response = Response(self.judgments.export(), media_type="text/tab-separated-values; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="judgments.tsv"'})
        return secured(response)

    # -- many queries ----------------------------------------------------------------------
    async def queries(self, request: Request) -> Response:
        body = await read_json(request)
        limit = _int(body.get("limit", MAX_SCORED_QUERIES), "limit", 1, MAX_SCORED_QUERIES)
        judged = self.judgments.queries()
        scored = await self._score(request, body, judged[:limit])
        return json_response({**scored, "truncated": len(judged) > limit, "judged_queries": len(judged)})

    async def get_cases(self, request: Request) -> Response:
        return json_response({"cases": self.cases.all()})

    async def put_case(self, request: Request) -> Response:
        body = await read_json(request)
        name = request.path_params["name"]
        kept = await run_in_threadpool(self.cases.put, name, body.get("queries"))
        return json_response({"name": name.strip(), "queries": kept})

    async def delete_case(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await run_in_threadpool(self.cases.delete, name):
            return json_response(error_json(404, "resource_not_found_exception", f"no case [{name}]"), 404)
        return json_response({"name": name, "deleted": True})

    async def run_case(self, request: Request) -> Response:
        body = await read_json(request)
        name = body.get("name")
        if name is not None:
            queries = self.cases.get(str(name))
            if queries is None:
                return json_response(error_json(404, "resource_not_found_exception", f"no case [{name}]"), 404)
        else:
            raw = body.get("queries")
            if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
                raise UsageError("give [name] of a saved case or [queries], a list of query strings")
            queries = list(dict.fromkeys(clean_query(q) for q in raw if clean_query(q)))
        if len(queries) > MAX_SCORED_QUERIES:
            raise UsageError(f"a case is scored on at most {MAX_SCORED_QUERIES} queries, got {len(queries)}")
        scored = await self._score(request, body, queries)
        return json_response({"name": name, **scored})

    async def _score(self, request: Request, body: Mapping[str, Any], queries: Sequence[str]) -> dict[str, Any]:
        """Each of `queries` searched in each column, and the metrics: per query (worst first) and their means."""
        user, filters = _context_of(body)
        columns = parse_columns(body.get("columns"), self.dsr.settings.limits)
        caller = self._caller(request)
        gate = asyncio.Semaphore(max(1, self.dsr.admission.running))  # never more than the admission runs at once

        async def one(text: str, column: Column) -> ColumnMetrics:
            async with gate:
                answer = await self._run(self._request(column, text, user, filters, caller))
            return column_metrics([h.id for h in answer.result.hits], self.judgments.grades(text))

        scored = await asyncio.gather(*(one(q, c) for q in queries for c in columns))
        per_query = [scored[n * len(columns):(n + 1) * len(columns)] for n in range(len(queries))]
        worst_first = sorted(zip(queries, per_query, strict=True),
                             key=lambda qm: (qm[1][0].ndcg10 is None, qm[1][0].ndcg10 or 0.0, qm[0]))
        rows = [{"query": q, "judged": m[0].judged, "relevant": m[0].relevant, "metrics": [x.to_json() for x in m]}
                for q, m in worst_first]
        means = [mean_metrics([m[c] for m in per_query]) for c in range(len(columns))]
        return {"columns": [{"name": c.name, "config": c.config(self.dsr.settings.limits), "means": mean}
                            for c, mean in zip(columns, means, strict=True)],
                "queries": rows}

    # -- running ---------------------------------------------------------------------------
    def _caller(self, request: Request) -> Caller | None:
        """Whose rights the searches have: the caller's own credential headers on a cluster (none embedded)."""
        return None if self.dsr.settings.embedded else Caller.from_headers(request.headers.items())

    def _request(self, column: Column, text: str, user: Mapping[str, Any] | None,
                 filters: Mapping[str, Any] | None, caller: Caller | None) -> SearchRequest:
        req = column.request(text, user=user, filters=filters, limits=self.dsr.settings.limits)
        return replace(req, caller=caller)

    async def _run(self, req: SearchRequest) -> Answer:
        async with self.dsr.admission.slot():
            return await run_in_threadpool(self.dsr.served.run, self.dsr.settings.index, req)

    async def _timed(self, req: SearchRequest) -> tuple[Answer, float]:
        started = time.perf_counter()
        answer = await self._run(req)
        return answer, round((time.perf_counter() - started) * 1000.0, 1)

    # -- errors ----------------------------------------------------------------------------
    def answered(self, handler: Handler) -> Handler:
        """`handler` behind the origin check, its failures answered as the `ext.dsr` search answers them."""

        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                check_origin(request)
                return await handler(request)
            except Refused as e:
                return json_response(error_json(e.status, e.error_type, e.reason), e.status)
            except UsageError as e:
                return json_response(error_json(400, "illegal_argument_exception", self.dsr._redact(str(e))), 400)
            except TargetRefused as e:
                return json_response(error_json(400, "illegal_argument_exception", str(e)), 400)
            except ResolutionFailed as e:
                return secured(self.dsr._engine_error_response(e.error))
            except EngineAuthError as e:
                if self.dsr.settings.embedded:
                    return secured(self.dsr._engine_error_response(e))
                return _refused_caller(e)
            except EngineError as e:
                return secured(self.dsr._engine_error_response(e))
            except DsrError as e:
                return json_response(error_json(500, "dsr_exception", self.dsr._redact(str(e))), 500)

        return run

    async def not_found(self, request: Request) -> Response:
        return json_response(error_json(404, "resource_not_found_exception",
                                        f"no workbench endpoint {request.method} {request.url.path}; "
                                        "GET /_dsr/api lists them"), 404)

    def routes(self) -> list[BaseRoute]:
        a = self.answered
        return [
            Route("/_dsr", a(self.to_page), methods=["GET"]),
            Route("/_dsr/", a(self.page), methods=["GET"]),
            Route("/_dsr/static/{name}", a(self.static), methods=["GET"]),
            Route("/_dsr/api", a(self.index), methods=["GET"]),
            Route("/_dsr/api/", a(self.index), methods=["GET"]),
            Route("/_dsr/api/info", a(self.info), methods=["GET"]),
            Route("/_dsr/api/search", a(self.search), methods=["POST"]),
            Route("/_dsr/api/explain", a(self.explain), methods=["POST"]),
            Route("/_dsr/api/metrics", a(self.metrics), methods=["POST"]),
            Route("/_dsr/api/judgments", a(self.get_judgments), methods=["GET"]),
            Route("/_dsr/api/judgments", a(self.put_judgments), methods=["PUT"]),
            Route("/_dsr/api/judgments/export", a(self.export), methods=["GET"]),
            Route("/_dsr/api/queries", a(self.queries), methods=["POST"]),
            Route("/_dsr/api/cases", a(self.get_cases), methods=["GET"]),
            Route("/_dsr/api/cases/{name}", a(self.put_case), methods=["PUT"]),
            Route("/_dsr/api/cases/{name}", a(self.delete_case), methods=["DELETE"]),
            Route("/_dsr/api/case", a(self.run_case), methods=["POST"]),
            Route("/_dsr/api/{rest:path}", a(self.not_found),
                  methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        ]


def workbench_routes(dsr: DsrApp, judgments: Path | None = None) -> list[BaseRoute]:
    """The page and API routes of the workbench over `dsr`; its files live under `DATA_DIR/workbench/`.

    `judgments` is the `--judgments` file (read now: a bad file stops `dsr serve` from starting).
    """
    folder = Path(dsr.settings.connection.data_dir) / "workbench"
    bench = Workbench(dsr, JudgmentStore(folder / "judgments.tsv", judgments), CaseStore(folder / "cases.json"))
    return bench.routes()


def _query_of(body: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """The query text, the user (`user_id` and the profile object merged) and the filters of a body."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UsageError("[text] must be a non-empty string: the query")
    return (clean_query(text), *_context_of(body))


def _context_of(body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The user (`user_id` and the profile object merged) and the filters of a body."""
    user: dict[str, Any] | None = None
    profile = body.get("user")
    if profile is not None:
        if not isinstance(profile, dict):
            raise UsageError("[user] must be an object (the user's profile: recent_clicks, price_level, segment, ...)")
        user = dict(profile)
    user_id = body.get("user_id")
    if user_id not in (None, ""):
        if not isinstance(user_id, str | int) or isinstance(user_id, bool):
            raise UsageError("[user_id] must be a string")
        user = {**(user or {}), "user_id": str(user_id)}
    filters = body.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise UsageError("[filters] must be an object, as ext.dsr.filters")
    return user or None, filters or None


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"[{name}] must be an integer from {lo} to {hi}, got {value!r}")
    return value


def _stage(stage: Any) -> dict[str, float | int] | None:
    return None if stage is None else {"score": stage.score, "rank": stage.rank}


def _hit_json(hit: HybridHit, grade: float | None, moved: Sequence[Any], alone: bool) -> dict[str, Any]:
    source = hit.source
    return {
        "id": hit.id, "rank": hit.rank, "score": hit.score,
        "title": source.get("title"), "brand": source.get("brand"), "price": source.get("price"),
        "image": image_url(source), "source": dict(source),
        "stages": {"term": _stage(hit.term), "vector": _stage(hit.vector), "fused": _stage(hit.fused),
                   "rerank": _stage(hit.rerank)},
        "grade": grade, "moves": [m.to_json() for m in moved], "only_here": alone,
    }


def _refused_caller(e: EngineAuthError) -> Response:
    """The cluster's refusal of the caller's credentials (401) or rights (403); a 401 asks the browser for them."""
    status = e.status if e.status in (401, 403) else 401
    payload = ({"error": e.error, "status": status} if e.error else
               error_json(status, "security_exception", "the cluster refused the search: "
                          + ("missing or refused credentials" if status == 401 else "not allowed with your rights")))
    headers = {"WWW-Authenticate": 'Basic realm="dsr workbench", charset="UTF-8"'} if status == 401 else None
    return json_response(payload, status, headers)
