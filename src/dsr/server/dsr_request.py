"""Parsing and validation of a search request that carries `ext.dsr`.

The request is the normal search body plus an `ext.dsr` object:

    {"query": {...}, "size": 10, "from": 0, "_source": [...], "explain": true,
     "ext": {"dsr": {"text": "red sneakers", "k": 100, "term_k": 100, "fusion": "rrf", "rrf_k": 60,
                     "normalization": "min_max", "weights": {"term": 1, "vector": 1},
                     "rerank": true, "rerank_top": 100, "user": {...}, "filters": {...}}}}

Everything is checked before any work is done, and every problem is a 400 whose reason names the
key: unknown keys, wrong types, depths above the configured maximum, and `from + size` beyond the
candidate pool (`term_k + k`). A body key dsr cannot honour (aggregations, sort, ...) is refused
rather than silently ignored. The query text is bounded (characters and terms: the term side turns
every term into clauses, and the engines refuse a query of more than
`indices.query.bool.max_clause_count`, 1,024 by default, clauses), and so is how deep the body
nests; no number in it may be infinite and no string an unpaired UTF-16 surrogate, which neither
the cluster's client nor the encoders can write.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dsr.backends import filters as filter_lang
from dsr.errors import UsageError
from dsr.search.fusion import FusionConfig, FusionMode, Normalization
from dsr.search.request import SearchRequest
from dsr.search.result import TERM, VECTOR
from dsr.server.errors import RequestError

BODY_KEYS = {"query", "size", "from", "_source", "explain", "ext", "track_total_hits", "timeout"}
URL_PARAMS = {"size", "from", "explain", "_source", "_source_includes", "_source_excludes",
              "rest_total_hits_as_int", "pretty", "human", "error_trace", "typed_keys",
              "track_total_hits", "timeout", "ignore_unavailable", "allow_no_indices",
              "expand_wildcards", "request_cache", "ccs_minimize_roundtrips"}
DSR_KEYS = {"text", "k", "term_k", "fusion", "rrf_k", "normalization", "weights", "rerank",
            "rerank_top", "user", "filters"}


@dataclass(frozen=True)
class Limits:
    """Server-side bounds on what one request may ask for."""

    max_k: int = 1000
    default_k: int = 100
    default_rerank_top: int = 100
    max_size: int = 1000
    max_text_chars: int = 4096  # ext.dsr.text
    max_text_terms: int = 64  # words in ext.dsr.text: 64 terms x 16 fields stay within 1,024 clauses
    max_depth: int = 100  # how deep the body of an ext.dsr search may nest (objects and arrays)
    max_request_bytes: int = 1024 * 1024  # the body of an ext.dsr search, decoded


@dataclass(frozen=True)
class SourceFilter:
    enabled: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DsrRequest:
    """A parsed `ext.dsr` search: the search itself, and how its response is to be presented."""

    search: SearchRequest  # every depth set: the server's limits are its defaults
    source: SourceFilter = field(default_factory=SourceFilter)  # `_source` filtering of the hits
    total_as_int: bool = False  # `rest_total_hits_as_int`
    pretty: bool = False


def has_dsr_ext(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("ext"), dict) and "dsr" in body["ext"]


def _int(where: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise RequestError(f"[{where}] must be an integer, got {type(value).__name__} {value!r}")
    if value < lo:
        raise RequestError(f"[{where}] must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise RequestError(f"[{where}] must be <= {hi} (the configured maximum), got {value}")
    return value


def _bool(where: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false", ""):
        return value != "false"
    raise RequestError(f"[{where}] must be a boolean, got {type(value).__name__} {value!r}")


def _object(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(f"[{where}] must be an object, got {type(value).__name__}")
    return value


def _choice(where: str, value: Any, choices: list[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise RequestError(f"[{where}] must be one of {choices}, got {value!r}")
    return value


_WORD = re.compile(r"\w+")


def _text(value: Any, limits: Limits) -> str:
    return check_text(value, limits, "ext.dsr.text")


def check_text(value: Any, limits: Limits, where: str) -> str:
    """`value` as a query text within the configured bounds of characters and terms."""
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f"[{where}] must be a non-empty string")
    if len(value) > limits.max_text_chars:
        raise RequestError(f"[{where}] is {len(value)} characters long; the configured maximum is "
                           f"{limits.max_text_chars}")
    terms = sum(1 for _ in zip(_WORD.finditer(value), range(limits.max_text_terms + 1), strict=False))
    if terms > limits.max_text_terms:
        raise RequestError(f"[{where}] has more than {limits.max_text_terms} terms (the configured "
                           "maximum); shorten the query")
    return value


def _path(parts: tuple[Any, ...]) -> str:
    shown = [p if isinstance(p, str) else f"[{p}]" for p in parts[:8]]
    text = ".".join(shown).replace(".[", "[")
    return text + (".…" if len(parts) > 8 else "")


def _check_values(body: Mapping[str, Any], max_depth: int) -> None:
    """Refuse what no part of the pipeline can carry: deep nesting, infinite numbers, lone surrogates.

    Iterative, so a deep body costs no stack; only containers are stacked, scalars are checked in place.
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(body, ())]
    while stack:
        container, where = stack.pop()
        if len(where) >= max_depth:
            raise RequestError(f"the search body nests deeper than {max_depth} levels (the configured "
                               f"maximum for a search with ext.dsr) at [{_path(where)}]")
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, str):
                if not _encodable(value):
                    raise RequestError(f"[{_path((*where, key))}] holds an unpaired UTF-16 surrogate")
            elif isinstance(value, float):
                if not math.isfinite(value):
                    raise RequestError(f"[{_path((*where, key))}] is a number out of range ({value})")
            elif isinstance(value, dict | list):
                stack.append((value, (*where, key)))
            if isinstance(key, str) and not _encodable(key):
                raise RequestError(f"a key in [{_path(where) or '/'}] holds an unpaired UTF-16 surrogate")


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _filters(value: Any) -> dict[str, Any]:
    filters = _object("ext.dsr.filters", value)
    for name, want in filters.items():
        where = f"ext.dsr.filters.{name}"
        if isinstance(want, dict):
            bad = set(want) - {"gte", "gt", "lte", "lt"}
            if bad or not want:
                raise RequestError(f"[{where}] a range takes gte/gt/lte/lt, got {sorted(want)}")
            for op, bound in want.items():
                if isinstance(bound, bool) or not isinstance(bound, int | float | str):
                    raise RequestError(f"[{where}.{op}] must be a number or a string")
        elif isinstance(want, list):
            if not want or not all(_scalar(v) for v in want):
                raise RequestError(f"[{where}] a list must hold one or more strings/numbers/booleans")
        elif not _scalar(want):
            raise RequestError(f"[{where}] must be a string, number, boolean, list or range object")
    try:
        filter_lang.validate(filters)
    except UsageError as e:
        raise RequestError(str(e)) from None
    return filters


def _scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool) and not (isinstance(v, float) and not math.isfinite(v))


def _patterns(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(p for p in value.split(",") if p) if "," in value else (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RequestError(f"[{where}] must be a string or a list of strings")


def _source_filter(body_value: Any, params: Mapping[str, str]) -> SourceFilter:
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    enabled = True
    if "_source" in params:
        raw = params["_source"]
        if raw in ("true", "false"):
            enabled = raw == "true"
        else:
            includes = _patterns("_source", raw)
    elif body_value is not None:
        if isinstance(body_value, bool):
            enabled = body_value
        elif isinstance(body_value, str | list):
            includes = _patterns("_source", body_value)
        elif isinstance(body_value, dict):
            unknown = set(body_value) - {"includes", "excludes", "include", "exclude"}
            if unknown:
                raise RequestError(f"[_source] unknown key(s) {sorted(unknown)}")
            includes = _patterns("_source.includes",
                                 body_value.get("includes", body_value.get("include", [])))
            excludes = _patterns("_source.excludes",
                                 body_value.get("excludes", body_value.get("exclude", [])))
        else:
            raise RequestError("[_source] must be a boolean, a string, a list or an object")
    if "_source_includes" in params:
        includes = _patterns("_source_includes", params["_source_includes"])
    if "_source_excludes" in params:
        excludes = _patterns("_source_excludes", params["_source_excludes"])
    return SourceFilter(enabled, includes, excludes)


@dataclass(frozen=True)
class ExtOptions:
    """What an `ext.dsr` object asks; None where it leaves the choice to the searcher's defaults."""

    enabled: bool = True
    text: str | None = None
    k: int | None = None
    term_k: int | None = None
    fusion: FusionConfig | None = None
    rerank: bool | None = None
    rerank_top: int | None = None
    user: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None


def parse_ext_options(value: Any, limits: Limits) -> ExtOptions:
    """The validated options of an `ext.dsr` object (every key optional)."""
    ext = _object("ext.dsr", value)
    unknown = set(ext) - DSR_KEYS - {"enabled"}
    if unknown:
        raise RequestError(f"[ext.dsr] unknown key(s) {sorted(unknown)}; known keys: {sorted(DSR_KEYS | {'enabled'})}")
    enabled = _bool("ext.dsr.enabled", ext.get("enabled", True))
    text = _text(ext["text"], limits) if "text" in ext else None
    k = _int("ext.dsr.k", ext["k"], 0, limits.max_k) if "k" in ext else None
    term_k = _int("ext.dsr.term_k", ext["term_k"], 0, limits.max_k) if "term_k" in ext else None
    if k == 0 and term_k == 0:
        raise RequestError("[ext.dsr] k and term_k cannot both be 0")
    fusion = None
    if any(key in ext for key in ("fusion", "rrf_k", "normalization", "weights")):
        mode = _choice("ext.dsr.fusion", ext.get("fusion", "rrf"), [m.value for m in FusionMode])
        rrf_k = _int("ext.dsr.rrf_k", ext.get("rrf_k", 60), 1, 100_000)
        norm = _choice("ext.dsr.normalization", ext.get("normalization", "min_max"),
                       [n.value for n in Normalization])
        fusion = FusionConfig(FusionMode(mode), rrf_k, Normalization(norm), _weights(ext))
    rerank = _bool("ext.dsr.rerank", ext["rerank"]) if "rerank" in ext else None
    rerank_top = (_int("ext.dsr.rerank_top", ext["rerank_top"], 0, limits.max_k) if "rerank_top" in ext
                  else None)
    user = _object("ext.dsr.user", ext["user"]) if ext.get("user") is not None else None
    filters = _filters(ext["filters"]) if ext.get("filters") is not None else None
    return ExtOptions(enabled, text, k, term_k, fusion, rerank, rerank_top, user, filters)


def _weights(ext: Mapping[str, Any]) -> dict[str, float]:
    weights: dict[str, float] = {}
    if "weights" not in ext:
        return weights
    raw = _object("ext.dsr.weights", ext["weights"])
    bad = set(raw) - {TERM, VECTOR}
    if bad:
        raise RequestError(f"[ext.dsr.weights] unknown stage(s) {sorted(bad)}; stages: term, vector")
    for stage, w in raw.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise RequestError(f"[ext.dsr.weights.{stage}] must be a number >= 0, got {w!r}")
        weights[stage] = float(w)
    if not any(weights.values()):
        raise RequestError("[ext.dsr.weights] at least one weight must be > 0")
    return weights


def check_body(body: Mapping[str, Any], limits: Limits) -> None:
    """Refuse a body no part of the pipeline can carry (too deep, infinite numbers, lone surrogates)."""
    _check_values(body, limits.max_depth)


def is_plain_dsr_request(body: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """Whether an `ext.dsr` search asks only what dsr answers itself, without a final pass on the cluster."""
    return set(body) <= BODY_KEYS and set(params) <= URL_PARAMS


def parse_dsr_request(body: Mapping[str, Any], params: Mapping[str, str], limits: Limits) -> DsrRequest:
    """A validated `DsrRequest` from a search body with `ext.dsr` and the URL's query parameters."""
    unknown_params = set(params) - URL_PARAMS
    if unknown_params:
        raise RequestError(f"request [_search] contains unrecognized parameter(s) {sorted(unknown_params)} "
                           "for a search with ext.dsr")
    _check_values(body, limits.max_depth)
    unknown_body = set(body) - BODY_KEYS
    if unknown_body:
        raise RequestError(f"search body key(s) {sorted(unknown_body)} are not supported together with "
                           f"ext.dsr (supported: {sorted(BODY_KEYS)})")
    ext = parse_ext_options(body["ext"]["dsr"], limits)
    if ext.text is None:
        raise RequestError("[ext.dsr.text] is required: the query text for the vector side and the ranker")
    text = ext.text
    k = limits.default_k if ext.k is None else ext.k
    term_k = limits.default_k if ext.term_k is None else ext.term_k
    if k + term_k == 0:
        raise RequestError("[ext.dsr] k and term_k cannot both be 0")
    fusion = ext.fusion or FusionConfig()
    rerank = True if ext.rerank is None else ext.rerank
    rerank_top = limits.default_rerank_top if ext.rerank_top is None else ext.rerank_top

    size = _int("size", params.get("size", body.get("size", 10)), 0, limits.max_size)
    from_ = _int("from", params.get("from", body.get("from", 0)), 0)
    pool = k + term_k
    if size + from_ > pool:
        raise RequestError(f"[from] + [size] = {from_ + size} is beyond the candidate pool of "
                           f"{pool} (ext.dsr.term_k + ext.dsr.k); raise k/term_k or page less deep")
    explain = _bool("explain", params.get("explain", body.get("explain", False)))
    term_query = body.get("query")
    if term_query is not None:
        term_query = _object("query", term_query)
    if "track_total_hits" in body and not isinstance(body["track_total_hits"], bool | int):
        raise RequestError("[track_total_hits] must be a boolean or an integer")
    try:
        search = SearchRequest(text, user=ext.user, filters=ext.filters, size=size, offset=from_, term_k=term_k,
                               knn_k=k, fusion=fusion, rerank=rerank, rerank_top=rerank_top, explain=explain,
                               term_query=term_query)
    except UsageError as e:
        raise RequestError(str(e)) from None
    return DsrRequest(
        search=search,
        source=_source_filter(body.get("_source"), params),
        total_as_int=params.get("rest_total_hits_as_int", "false") in ("true", ""),
        pretty=params.get("pretty", "false") in ("true", ""),
    )
