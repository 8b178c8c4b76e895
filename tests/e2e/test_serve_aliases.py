"""`dsr serve --index ALIAS` on real Elasticsearch and OpenSearch: hybrid searches through aliases and
patterns run on the concrete index, and an alias swap (the shops' reindex) is followed.

Each test indexes the synthetic shoe catalog into fresh indexes, writes their sidecars where `dsr
ingest` keeps them (DATA_DIR/sidecar/INDEX), and serves the app `dsr serve` builds from its settings
(the hashing query tower, no ranker), with a short resolution TTL so a swap is seen quickly.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar import default_sidecar_dir
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import catalog

DIM = 64
TTL_S = 0.3
QUERY = {"size": 10, "ext": {"dsr": {"text": "red sneakers", "k": 20, "term_k": 20}}}


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


@dataclass
class Shop:
    """A shop's indexes on one cluster: `v1` behind `alias`, and what the tests add beside it."""

    backend: SearchBackend
    data_dir: Path
    base: str
    v1: str
    alias: str
    v1_ids: set[str] = field(default_factory=set)

    def index(self, name: str, prefix: str, *, sidecar: bool = True) -> set[str]:
        """Index the catalog into `name` with ids `PREFIX000...`, its sidecar written unless told not to."""
        rows = [{**r, "id": prefix + r["id"][1:]} for r in catalog()]
        vectors = HashingEncoder(DIM).encode_items(rows)
        self.backend.ensure_index(IndexSpec(name, dims=DIM))
        result = self.backend.bulk_upsert(name, [{**r, "embedding": v.tolist()}
                                                 for r, v in zip(rows, vectors, strict=True)])
        assert result.ok, result.failed[:3]
        self.backend.refresh(name)
        if sidecar:
            self.write_sidecar(name, rows)
        return {r["id"] for r in rows}

    def write_sidecar(self, name: str, rows: list[dict[str, Any]] | None = None, prefix: str = "") -> None:
        rows = rows or [{**r, "id": prefix + r["id"][1:]} for r in catalog()]
        index = FaissIndex(DIM, kind="flat", device="cpu")
        index.upsert([r["id"] for r in rows], HashingEncoder(DIM).encode_items(rows))
        index.save(default_sidecar_dir(self.data_dir, name))

    def aliases(self, *actions: dict[str, Any]) -> None:
        r = httpx.post(f"{self.backend.url}/_aliases", json={"actions": list(actions)}, timeout=30)
        assert r.status_code == 200, r.text

    def app(self, **settings: Any) -> Any:
        conn = ConnectionSettings(engine_url=self.backend.url, data_dir=self.data_dir)
        return create_app(ServeSettings(conn, index=self.alias, model=f"hashing:{DIM}", resolve_ttl_s=TTL_S,
                                        **settings))


@pytest.fixture
def shop(cluster: SearchBackend, tmp_path: Path) -> Iterator[Shop]:
    base = f"dsr-e2e-alias-{uuid.uuid4().hex[:8]}"
    s = Shop(cluster, tmp_path, base, f"{base}-v1", f"{base}-products")
    s.v1_ids = s.index(s.v1, "p")
    s.aliases({"add": {"index": s.v1, "alias": s.alias}})
    try:
        yield s
    finally:
        for name in (f"{base}-v1", f"{base}-v2", f"{base}-v3"):
            cluster.delete_index(name)


def search(url: str, target: str, body: dict[str, Any] = QUERY) -> httpx.Response:
    return httpx.post(f"{url}/{target}/_search", json=body, timeout=30)


def assert_hybrid_on(r: httpx.Response, index: str, ids: set[str]) -> None:
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ext"]["dsr"]["vector_source"] == "sidecar" and out["ext"]["dsr"]["vector_hits"] > 0
    assert out["ext"]["dsr"]["degraded"] is False and "warning" not in r.headers, r.headers.get("warning")
    hits = out["hits"]["hits"]
    assert hits and {h["_index"] for h in hits} == {index}
    assert {h["_id"] for h in hits} <= ids


def test_a_search_through_the_alias_a_pattern_or_a_list_runs_hybrid_on_the_concrete_index(shop, serve_thread):
    with serve_thread(shop.app()) as url:
        for target in (shop.alias, shop.v1, f"{shop.base}-*", f"{shop.alias},{shop.v1}", f"{shop.base}-pro*"):
            assert_hybrid_on(search(url, target), shop.v1, shop.v1_ids)


def test_a_target_reaching_several_indexes_or_one_not_served_is_refused_with_the_reason(shop, serve_thread):
    shop.index(f"{shop.base}-v2", "q", sidecar=False)
    both = f"{shop.base}-both"
    shop.aliases({"add": {"index": shop.v1, "alias": both}}, {"add": {"index": f"{shop.base}-v2", "alias": both}},
                 {"add": {"index": shop.v1, "alias": f"{shop.base}-red", "filter": {"term": {"brand": "acme"}}}})
    with serve_thread(shop.app()) as url:
        several = search(url, both)
        pattern = search(url, f"{shop.base}-v*")
        other = search(url, f"{shop.base}-v2")
        filtered = search(url, f"{shop.base}-red")
        missing = search(url, f"{shop.base}-nothing")
        plain = search(url, both, {"size": 200, "query": {"match_all": {}}})  # no ext.dsr: the cluster's answer
    for r in (several, pattern, other, filtered, missing):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "illegal_argument_exception"
        assert r.json()["error"]["reason"].startswith(f"ext.dsr searches are served for index [{shop.alias}] "
                                                      f"(now [{shop.v1}]) only, not [")
    assert several.json()["error"]["reason"].endswith(
        f"it resolves to 2 indexes [{shop.v1}, {shop.base}-v2] and a hybrid search runs on one")
    assert "it resolves to 2 indexes" in pattern.json()["error"]["reason"]
    assert other.json()["error"]["reason"].endswith(f"it resolves to [{shop.base}-v2], which dsr does not serve")
    assert f"alias(es) [{shop.base}-red] with a filter" in filtered.json()["error"]["reason"]
    assert missing.json()["error"]["reason"].endswith("no index or alias matches it")
    assert plain.status_code == 200
    assert {h["_index"] for h in plain.json()["hits"]["hits"]} == {shop.v1, f"{shop.base}-v2"}


def swap(shop: Shop, new: str) -> None:
    """The reindex pattern: move the alias from v1 to `new` in one atomic `_aliases` request."""
    shop.aliases({"remove": {"index": shop.v1, "alias": shop.alias}}, {"add": {"index": new, "alias": shop.alias}})


def test_an_alias_swap_is_followed_to_the_new_index_and_its_own_sidecar(shop, serve_thread, caplog):
    v2 = f"{shop.base}-v2"
    v2_ids = shop.index(v2, "q")
    caplog.set_level(logging.INFO, logger="dsr.server.targets")
    with serve_thread(shop.app()) as url:
        assert_hybrid_on(search(url, shop.alias), shop.v1, shop.v1_ids)
        swap(shop, v2)
        time.sleep(TTL_S * 2)
        for _ in range(3):
            assert_hybrid_on(search(url, shop.alias), v2, v2_ids)  # no neighbour of v1 missing from v2
        old = search(url, shop.v1)
    assert old.status_code == 400 and "which dsr does not serve" in old.json()["error"]["reason"]
    swaps = [r.getMessage() for r in caplog.records if "moved from index" in r.getMessage()]
    assert swaps == [f"dsr serve: [{shop.alias}] moved from index [{shop.v1}] to [{v2}]; serving it with its own "
                     "vector side"]


def test_after_a_swap_to_an_index_without_a_sidecar_searches_are_term_only_until_it_has_one(shop, serve_thread):
    v2 = f"{shop.base}-v2"
    v2_ids = shop.index(v2, "q", sidecar=False)
    with serve_thread(shop.app()) as url:
        assert_hybrid_on(search(url, shop.alias), shop.v1, shop.v1_ids)
        swap(shop, v2)
        time.sleep(TTL_S * 2)
        r = search(url, shop.alias, {**QUERY, "explain": True})
        assert r.status_code == 200, r.text
        assert r.headers["warning"].startswith(f'299 dsr "vector search unavailable: index [{v2}] has no sidecar')
        assert r.headers["x-dsr-degraded"] == "true"
        out = r.json()
        assert out["ext"]["dsr"]["degraded"] is True and out["ext"]["dsr"]["vector_hits"] == 0
        hits = out["hits"]["hits"]
        assert hits and {h["_index"] for h in hits} == {v2} and {h["_id"] for h in hits} <= v2_ids
        assert all(h["_explanation"]["details"][0]["description"].startswith("term: BM25") for h in hits)

        shop.write_sidecar(v2, prefix="q")  # `dsr ingest` wrote it meanwhile
        time.sleep(TTL_S * 2)
        assert_hybrid_on(search(url, shop.alias), v2, v2_ids)


def test_a_swap_made_in_two_steps_keeps_the_served_index_until_the_alias_reaches_only_the_new_one(shop, serve_thread):
    v2 = f"{shop.base}-v2"
    v2_ids = shop.index(v2, "q")
    with serve_thread(shop.app()) as url:
        assert_hybrid_on(search(url, shop.alias), shop.v1, shop.v1_ids)
        shop.aliases({"add": {"index": v2, "alias": shop.alias}})
        time.sleep(TTL_S * 2)
        assert_hybrid_on(search(url, shop.alias), shop.v1, shop.v1_ids)
        shop.aliases({"remove": {"index": shop.v1, "alias": shop.alias}})
        time.sleep(TTL_S * 2)
        assert_hybrid_on(search(url, shop.alias), v2, v2_ids)
