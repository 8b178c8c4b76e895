"""`Sources`: the documents one search shows or feeds the ranker, and the one retry when some are gone.

Term hits bring their sources; the engine's kNN does too; sidecar neighbours come as bare ids and are
fetched with `mget`. A neighbour the index no longer has (deleted from the cluster, not yet from the
sidecar) cannot be shown: it is dropped, and the pool is fused again without it, which may bring
other candidates whose sources are needed. `settle` runs that loop a bounded number of times; the
stages only say which sources they need (`require`).

On a search with a caller's credentials, on a cluster with security, the cluster returns only the
documents the caller may read, so a neighbour it does not return may as well exist and be hidden
from the caller: it is dropped the same way, and the caller is not told (`report_gone=False`: no
warning, which would count hidden documents near the query); the operator's log says, at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from dsr.backends.base import Hit, SearchBackend
from dsr.search.timings import Timings

log = logging.getLogger(__name__)

FETCH_ROUNDS = 3
T = TypeVar("T")


class SourcesGone(Exception):
    """Sources required in a round of `Sources.settle` are gone from the index; the round starts over."""


class Sources:
    """The sources known to one search, fetched from `index` as the stages require them.

    Args:
        backend, index: where documents are fetched from.
        timings: `mget` time is added under "mget".
        rounds: how many times `settle` runs its attempt at most.
        report_gone: whether the search's answer says that neighbours were missing; False when the
            backend answers with a caller's rights, under which missing may mean hidden.
    """

    def __init__(self, backend: SearchBackend, index: str, timings: Timings, *, rounds: int = FETCH_ROUNDS,
                 report_gone: bool = True) -> None:
        self.backend = backend
        self.index = index
        self.timings = timings
        self.rounds = max(1, rounds)
        self.report_gone = report_gone
        self.known: dict[str, Mapping[str, Any]] = {}
        self.gone: set[str] = set()
        self._last_round = True

    def add(self, hits: Iterable[Hit]) -> None:
        """Keep the sources that came with hits (an empty source is fetched again if needed)."""
        for h in hits:
            if h.source:
                self.known.setdefault(h.id, h.source)
                self.gone.discard(h.id)  # a search just found it: it is in the index after all

    def get(self, doc_id: str) -> Mapping[str, Any] | None:
        return self.known.get(doc_id)

    def missing(self, ids: Iterable[str]) -> list[str]:
        """The ids (in order, once each) with no source known and not known to be gone."""
        return [i for i in dict.fromkeys(ids) if i not in self.known and i not in self.gone]

    def fetch(self, ids: Sequence[str]) -> set[str]:
        """`mget` the ids not known yet; returns those the index turned out not to have."""
        need = self.missing(ids)
        if not need:
            return set()
        with self.timings.stage("mget"):
            got = self.backend.mget(self.index, need)
        self.known.update(got)
        gone = set(need) - set(got)
        self.gone |= gone
        return gone

    def matching(self, ids: Sequence[str], query: Mapping[str, Any], extra: Mapping[str, Any] | None) -> set[str]:
        """Those of `ids` that match `query` on the cluster; their sources become known."""
        if not ids:
            return set()
        with self.timings.stage("filter"):
            got = self.backend.matching(self.index, ids, query, extra)
        for doc_id, source in got.items():
            self.known.setdefault(doc_id, source)
        return set(got)

    def require(self, ids: Sequence[str]) -> None:
        """Fetch the sources of `ids`; inside `settle`, ids gone from the index start the round over.

        In the last round nothing starts over: the caller leaves the gone ids out (`self.gone`).
        """
        if self.fetch(ids) and not self._last_round:
            raise SourcesGone

    def settle(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` until a round finds every source it requires, at most `rounds` times.

        Each round starts from what the previous ones learnt: the ids in `gone` are to be left out of
        the pool, and the sources already fetched are not fetched again.
        """
        try:
            for round_ in range(1, self.rounds + 1):
                self._last_round = round_ == self.rounds
                try:
                    return attempt()
                except SourcesGone:
                    continue
            raise AssertionError("the last round of settle does not start over")
        finally:
            self._last_round = True

    def warning(self) -> str | None:
        """The one warning about neighbours gone from the index, if any were."""
        if not self.gone:
            return None
        if not self.report_gone:
            log.debug("%d vector neighbour(s) not returned from index %s with the caller's rights "
                      "(gone from the index, or not readable by the caller)", len(self.gone), self.index)
            return None
        log.warning("%d sidecar neighbour(s) missing from index %s", len(self.gone), self.index)
        return (f"{len(self.gone)} vector neighbour(s) not found in index {self.index!r} "
                "(sidecar out of sync); skipped")
