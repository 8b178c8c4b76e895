"""`SearchRequest`: everything one hybrid search is asked, in one frozen object.

The library (`HybridSearcher.run`), `dsr search` and the `ext.dsr` HTTP API all build one, so the
parameters are spelled out once. The depths and the fusion may be left unset: `resolve` fills them
from the searcher's `SearchDefaults`, once, at the start of a search.

`caller` says whose rights the search has on the cluster. Unset (the library, `dsr search`), the
searcher's backend acts with dsr's own credentials, as the operator who runs it. Set (every `ext.dsr`
search of `dsr serve`), every request the search makes to the cluster carries the caller's own
credential headers and none of dsr's (`SearchBackend.for_caller`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dsr.backends.base import Caller, Filters
from dsr.errors import UsageError
from dsr.search.fusion import FusionConfig


@dataclass(frozen=True)
class SearchDefaults:
    """What a search gets for the depths and fusion it leaves unset: the searcher's configuration."""

    term_k: int = 100
    knn_k: int = 100
    rerank_top: int = 100
    fusion: FusionConfig = field(default_factory=FusionConfig)

    def __post_init__(self) -> None:
        _check_depths(term_k=self.term_k, knn_k=self.knn_k, rerank_top=self.rerank_top)


@dataclass(frozen=True)
class SearchRequest:
    """One hybrid search: the query, its context and how deep each stage goes.

    Attributes:
        text: the query text, for the term side, the query tower and the ranker.
        user: the user context the query tower and the ranker may read.
        filters: the one filter language of `dsr.backends.filters`, applied on both sides.
        size, offset: the page of the final order that is returned (`from` in the HTTP API).
        term_k: term matches fetched (None: the searcher's default; 0: no term side).
        knn_k: vector neighbours kept (None: the searcher's default; 0: no vector side).
        fusion: how the two lists are fused (None: the searcher's default).
        rerank: whether the ranker re-orders the head of the fused pool.
        rerank_top: how many fused candidates the ranker re-orders (None: the searcher's default).
        explain: accepted for the HTTP API's sake; every hit keeps its stage scores anyway.
        term_query: engine query DSL that replaces the default `multi_match` on the term side.
        caller: the credentials the cluster sees for this search (None: the backend's own, dsr's).
        neighbour_filter: engine query DSL every vector neighbour must match, asked of the cluster
            (the restrictions of a shop's own query, `dsr.search.shop_query`); any filter the cluster
            understands works.
        term_extra: search body keys the term search (and the neighbour filter) carry beside the query
            (`runtime_mappings` a shop's query reads, `timeout`).
        whole_order: the result also holds the whole final order (`HybridResult.order`), not only the page.
    """

    text: str
    user: Mapping[str, Any] | None = None
    filters: Filters | None = None
    size: int = 10
    offset: int = 0
    term_k: int | None = None
    knn_k: int | None = None
    fusion: FusionConfig | None = None
    rerank: bool = True
    rerank_top: int | None = None
    explain: bool = False
    term_query: Mapping[str, Any] | None = None
    caller: Caller | None = None
    neighbour_filter: Mapping[str, Any] | None = None
    term_extra: Mapping[str, Any] | None = None
    whole_order: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise UsageError(f"the query text must be a string, got {type(self.text).__name__}")
        _check_depths(term_k=self.term_k, knn_k=self.knn_k, size=self.size, offset=self.offset,
                      rerank_top=self.rerank_top)

    def resolve(self, defaults: SearchDefaults) -> SearchRequest:
        """This request with every unset depth and the fusion taken from `defaults`."""
        return replace(self,
                       term_k=defaults.term_k if self.term_k is None else self.term_k,
                       knn_k=defaults.knn_k if self.knn_k is None else self.knn_k,
                       rerank_top=defaults.rerank_top if self.rerank_top is None else self.rerank_top,
                       fusion=defaults.fusion if self.fusion is None else self.fusion)

    @property
    def page_end(self) -> int:
        """One past the last position of the final order that is returned."""
        return self.offset + self.size


def _check_depths(**depths: int | None) -> None:
    if any(v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0) for v in depths.values()):
        raise UsageError("term_k, knn_k, size, from and rerank_top must be >= 0")
