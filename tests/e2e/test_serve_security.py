"""`dsr serve` in front of a secured OpenSearch: each caller's hybrid search sees what the cluster lets them.

The cluster (OpenSearch with its security plugin) holds a catalog of two brands in index A and
another index B. Its users: alice may read A, bob may read A's `acme` documents only (document level
security), carol may read B only. dsr serves A with the admin's credentials as its own (it ingested
A with them), a FAISS sidecar holding every item of A, and item records of every item: so anything
of A that bob sees beyond acme, or anything a caller without credentials sees at all, would have
come through dsr's rights rather than the caller's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dsr.backends import SearchBackend, connect
from dsr.catalog import numeric_field
from dsr.encoders.hashing import HashingEncoder
from dsr.engines.security import SecuredNode, basic_auth_header
from dsr.reranker.base import Candidate
from dsr.search import EngineVectors, HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords

from ..support.shoes import index_with_vectors

DIM = 32
COLORS = ["red", "blue", "green", "black"]
KINDS = ["sneakers", "boots", "sandals"]
BRANDS = ["acme", "zenit"]
PASSWORD = "Us3r-pass-7f4a9c2e!"  # every test user's (the cluster asks for a strong one)


def catalog() -> list[dict[str, Any]]:
    return [{"id": f"p{i:02d}", "title": f"{COLORS[i % 4]} {KINDS[(i // 4) % 3]} {i}", "brand": BRANDS[i % 2],
             "price": float(50 - i % 23)} for i in range(48)]


class SeenByRanker:
    """A transparent ranker (cheaper first) that remembers every item it was shown."""

    item_fields = ("price", "brand")

    def __init__(self) -> None:
        self.brands: set[str] = set()

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None
              ) -> np.ndarray:
        self.brands |= {str(c.item.get("brand")) for c in candidates}
        return np.array([-numeric_field(c.item, "price") for c in candidates], dtype=np.float32)


@dataclass
class Cluster:
    node: SecuredNode
    backend: SearchBackend  # with dsr's own credentials (the admin's)
    index: str
    other: str
    sidecar: FaissIndex
    records: ItemRecords
    acme: set[str]


@pytest.fixture(scope="module")
def cluster(secured_opensearch: SecuredNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    node = secured_opensearch
    user, password = node.security.admin_auth
    backend = connect(ConnectionSettings(engine_url=node.url, username=user, password=password))
    suffix = uuid.uuid4().hex[:8]
    index, other = f"dsr-sec-a-{suffix}", f"dsr-sec-b-{suffix}"
    rows = catalog()
    for name in (index, other):
        vectors = index_with_vectors(backend, name, rows, DIM)
    node.put_role(f"read-a-{suffix}", [{"index_patterns": [index], "allowed_actions": ["read"]}])
    node.put_role(f"read-a-acme-{suffix}", [{"index_patterns": [index], "allowed_actions": ["read"],
                                             "dls": '{"term": {"brand": "acme"}}'}])
    node.put_role(f"read-b-{suffix}", [{"index_patterns": [other], "allowed_actions": ["read"]}])
    node.put_user("alice", PASSWORD, [f"read-a-{suffix}"])
    node.put_user("bob", PASSWORD, [f"read-a-acme-{suffix}"])
    node.put_user("carol", PASSWORD, [f"read-b-{suffix}"])
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], vectors)
    records = ItemRecords.open(Path(tmp_path_factory.mktemp("records")), SeenByRanker.item_fields)
    records.upsert(rows)
    try:
        yield Cluster(node, backend, index, other, sidecar, records,
                      {r["id"] for r in rows if r["brand"] == "acme"})
    finally:
        for name in (index, other):
            backend.delete_index(name)
        backend.close()


@dataclass
class Served:
    url: str
    index: str
    ranker: SeenByRanker


@pytest.fixture(params=["sidecar", "engine"])
def served(request: pytest.FixtureRequest, cluster: Cluster, serve_thread: Any) -> Iterator[Served]:
    """dsr serve with dsr's own (admin) credentials, its neighbours from the sidecar or the engine's kNN."""
    ranker = SeenByRanker()
    vectors: Any = cluster.sidecar if request.param == "sidecar" else EngineVectors(cluster.backend, cluster.index)
    searcher = HybridSearcher(cluster.backend, cluster.index, HashingEncoder(DIM), vectors, ranker,
                              item_records=cluster.records if request.param == "sidecar" else None)
    user, password = cluster.node.security.admin_auth
    settings = ServeSettings(ConnectionSettings(engine_url=cluster.node.url, username=user, password=password),
                             index=cluster.index, model=None)
    with serve_thread(create_app(settings, searcher=searcher)) as url:
        yield Served(url, cluster.index, ranker)


def search(s: Served, user: str | None, text: str = "red sneakers", *, password: str = PASSWORD,
           size: int = 30) -> httpx.Response:
    headers = {"Authorization": basic_auth_header(user, password)} if user else {}
    body = {"size": size, "ext": {"dsr": {"text": text, "k": 30, "term_k": 30}}}
    return httpx.post(f"{s.url}/{s.index}/_search", json=body, headers=headers, timeout=60)


def test_dsr_knows_the_cluster_may_keep_documents_from_callers(cluster):
    assert cluster.backend.hides_from_callers() is True


def test_a_user_who_may_read_the_index_gets_all_of_it(served):
    r = search(served, "alice")
    assert r.status_code == 200, r.text[:500]
    hits = r.json()["hits"]["hits"]
    assert {h["_source"]["brand"] for h in hits} == set(BRANDS)
    assert r.json()["ext"]["dsr"]["vector_hits"] > 0


def test_document_level_security_decides_every_hit_and_what_the_ranker_sees(served, cluster):
    r = search(served, "bob")
    assert r.status_code == 200, r.text[:500]
    out = r.json()
    hits = out["hits"]["hits"]
    assert hits and {h["_id"] for h in hits} <= cluster.acme
    assert out["ext"]["dsr"]["vector_hits"] > 0  # the acme neighbours were kept ...
    assert out["ext"]["dsr"]["pool"] <= len(cluster.acme)  # ... the others dropped before fusion
    assert served.ranker.brands == {"acme"}  # no item record stood in for a document bob may not read
    assert "Warning" not in r.headers  # nor is bob told that hidden documents lie near his query


def test_a_user_without_rights_on_the_index_is_refused_by_the_cluster(served):
    r = search(served, "carol")
    assert r.status_code == 403, r.text[:500]
    assert r.json()["status"] == 403 and r.json()["error"]["type"] == "security_exception"


@pytest.mark.parametrize("password", [None, "wrong-Passw0rd!"])
def test_a_caller_without_valid_credentials_gets_the_clusters_401_not_dsrs_rights(served, password):
    r = search(served, "alice" if password else None, password=password or PASSWORD)
    assert r.status_code == 401, r.text[:500]
    assert r.json()["status"] == 401
    assert served.ranker.brands == set()  # nothing was searched


def test_pass_through_requests_keep_the_callers_credentials(served, cluster):
    headers = {"Authorization": basic_auth_header("bob", PASSWORD)}
    r = httpx.get(f"{served.url}/{served.index}/_count", headers=headers, timeout=30)
    assert r.status_code == 200 and r.json()["count"] == len(cluster.acme)
    assert httpx.get(f"{served.url}/{served.index}/_count", timeout=30).status_code == 401


def test_a_shops_own_request_answered_hybrid_shows_and_counts_only_what_the_caller_may_read(served, cluster):
    headers = {"Authorization": basic_auth_header("bob", PASSWORD)}
    body = {"query": {"bool": {"must": [{"match": {"title": "red sneakers"}}],
                               "filter": [{"range": {"price": {"gte": 0}}}]}},
            "aggs": {"brands": {"terms": {"field": "brand"}}}, "highlight": {"fields": {"title": {}}},
            "size": 30, "ext": {"dsr": {"k": 30, "term_k": 30}}}
    r = httpx.post(f"{served.url}/{served.index}/_search", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["x-dsr-path"] == "hybrid"
    out = r.json()
    assert out["hits"]["hits"] and {h["_id"] for h in out["hits"]["hits"]} <= cluster.acme
    assert [b["key"] for b in out["aggregations"]["brands"]["buckets"]] == ["acme"]  # facets count bob's only
    assert out["hits"]["total"]["value"] == out["aggregations"]["brands"]["buckets"][0]["doc_count"]
    assert served.ranker.brands <= {"acme"}  # no record of a hidden document reached the ranker
    anonymous = httpx.post(f"{served.url}/{served.index}/_search", json=body, timeout=60)
    assert anonymous.status_code == 401
