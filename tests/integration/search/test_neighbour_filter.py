"""The cluster holds vector neighbours to a shop's own restrictions, in one round or two.

A shop's search filters (`bool.filter`, `must_not`) apply to the vector side too: the cluster says
which neighbours match them. Twice the wanted number of neighbours are checked first; when fewer than
`knn_k` of them pass (a selective filter), the full over-fetch is checked, so a selective filter still
gets its `knn_k` neighbours when the sidecar holds them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchRequest
from dsr.sidecar.faiss_index import FaissIndex

from ...support.shoes import catalog

DIM = 64
ROWS = catalog(90)
ENCODER = HashingEncoder(DIM)


class MatchingCounting:
    """The real backend, noting the number of ids of each `matching` call."""

    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend
        self.asked: list[int] = []

    def matching(self, index, ids, query, extra=None):  # type: ignore[no-untyped-def]
        self.asked.append(len(ids))
        return self._backend.matching(index, ids, query, extra)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._backend, name)


@pytest.fixture(scope="module", params=["elasticsearch", "opensearch"])
def shop(request: pytest.FixtureRequest) -> Iterator[tuple[SearchBackend, str, FaissIndex]]:
    backend = request.getfixturevalue("es_backend" if request.param == "elasticsearch" else "os_backend")
    index = f"dsr-it-neighbour-filter-{uuid.uuid4().hex[:8]}"
    backend.ensure_index(IndexSpec(index, dims=DIM))
    vectors = ENCODER.encode_items(ROWS)
    assert backend.bulk_upsert(index, ROWS).ok
    backend.refresh(index)
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in ROWS], vectors)
    try:
        yield backend, index, sidecar
    finally:
        backend.delete_index(index)


def search(shop, restriction, knn_k=15):  # type: ignore[no-untyped-def]
    backend, index, sidecar = shop
    counting = MatchingCounting(backend)
    searcher = HybridSearcher(counting, index, ENCODER, sidecar, None, overfetch=5)  # type: ignore[arg-type]
    request = SearchRequest("red sneakers", size=0, term_k=0, knn_k=knn_k, whole_order=True,
                            neighbour_filter=restriction)
    result = searcher.run(request)
    searcher.close()
    return result, counting.asked


def brand_of(doc_id: str) -> str:
    return next(r["brand"] for r in ROWS if r["id"] == doc_id)


def test_a_filter_most_items_pass_is_checked_in_one_round_of_twice_k(shop):
    result, asked = search(shop, {"bool": {"must_not": [{"term": {"id": "p000"}}]}})
    assert asked == [30]
    assert result.vector_hits == 15 and "p000" not in {h.id for h in result.order}


def test_a_selective_filter_gets_a_second_round_and_still_k_neighbours(shop):
    result, asked = search(shop, {"term": {"brand": "acme"}})  # a third of the catalog
    assert len(asked) == 2 and asked[0] == 30 and asked[0] + asked[1] == 75
    assert result.vector_hits == 15
    assert {brand_of(h.id) for h in result.order} == {"acme"}


def test_a_filter_nothing_passes_leaves_no_neighbours(shop):
    result, asked = search(shop, {"term": {"brand": "no-such-brand"}})
    assert len(asked) == 2 and result.vector_hits == 0 and result.order == ()
