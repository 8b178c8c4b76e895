"""The workbench in front of a secured OpenSearch: its searches have the caller's rights, never dsr's.

dsr serve holds the admin's credentials (it ingested the index with them), a sidecar and item
records of every item; the workbench's searches and explanations must still show each caller only
what the cluster lets them read, and a caller without credentials gets the cluster's refusal (with
the header that makes a browser ask for them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dsr.backends import connect
from dsr.encoders.hashing import HashingEncoder
from dsr.engines.security import SecuredNode, basic_auth_header
from dsr.search import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import CheapestFirst, catalog, index_with_vectors

DIM = 32
PASSWORD = "Wb-user-pass-5e1d7c3a!"
COLUMNS = ["bm25", "knn", "hybrid+rerank"]


@dataclass
class Served:
    url: str
    index: str
    acme: set[str]


@pytest.fixture(scope="module")
def served(secured_opensearch: SecuredNode, tmp_path_factory: pytest.TempPathFactory,
           serve_thread: Any) -> Iterator[Served]:
    node = secured_opensearch
    user, password = node.security.admin_auth
    conn = ConnectionSettings(engine_url=node.url, username=user, password=password,
                              data_dir=tmp_path_factory.mktemp("data"))
    backend = connect(conn)
    suffix = uuid.uuid4().hex[:8]
    index, other = f"dsr-wb-sec-{suffix}", f"dsr-wb-other-{suffix}"
    rows = catalog(60)
    for name in (index, other):
        vectors = index_with_vectors(backend, name, rows, DIM)
    node.put_role(f"wb-read-{suffix}", [{"index_patterns": [index], "allowed_actions": ["read"]}])
    node.put_role(f"wb-acme-{suffix}", [{"index_patterns": [index], "allowed_actions": ["read"],
                                         "dls": '{"term": {"brand": "acme"}}'}])
    node.put_role(f"wb-other-{suffix}", [{"index_patterns": [other], "allowed_actions": ["read"]}])
    node.put_user("wb-alice", PASSWORD, [f"wb-read-{suffix}"])
    node.put_user("wb-bob", PASSWORD, [f"wb-acme-{suffix}"])
    node.put_user("wb-carol", PASSWORD, [f"wb-other-{suffix}"])
    sidecar = FaissIndex(DIM, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in rows], vectors)
    searcher = HybridSearcher(backend, index, HashingEncoder(DIM), sidecar, CheapestFirst())
    try:
        with serve_thread(create_app(ServeSettings(conn, index=index), searcher=searcher)) as url:
            yield Served(url, index, {r["id"] for r in rows if r["brand"] == "acme"})
    finally:
        for name in (index, other):
            backend.delete_index(name)
        backend.close()


def post(s: Served, path: str, body: dict[str, Any], user: str | None) -> httpx.Response:
    headers = {"Authorization": basic_auth_header(user, PASSWORD)} if user else {}
    return httpx.post(f"{s.url}/_dsr/api/{path}", json=body, headers=headers, timeout=60)


def test_a_reader_of_the_index_sees_all_of_it_in_every_column(served):
    r = post(served, "search", {"text": "red sneakers", "columns": COLUMNS, "size": 30}, "wb-alice")
    assert r.status_code == 200, r.text[:500]
    for column in r.json()["columns"]:
        assert {h["brand"] for h in column["hits"]} == {"acme", "zenit", "orbit"}, column["name"]


def test_document_level_security_decides_every_column_and_every_explanation(served):
    r = post(served, "search", {"text": "red sneakers", "columns": COLUMNS, "size": 30}, "wb-bob")
    assert r.status_code == 200, r.text[:500]
    columns = r.json()["columns"]
    for column in columns:
        assert column["hits"] and {h["id"] for h in column["hits"]} <= served.acme, column["name"]
        assert set(column["ranking"]) <= served.acme
    alice = post(served, "search", {"text": "red sneakers", "columns": ["bm25"], "size": 30}, "wb-alice").json()
    hidden = next(h["id"] for h in alice["columns"][0]["hits"] if h["id"] not in served.acme)
    shown = columns[2]["hits"][0]["id"]
    explained = post(served, "explain", {"text": "red sneakers", "column": "hybrid+rerank", "id": shown}, "wb-bob")
    assert explained.status_code == 200 and explained.json()["term"]["matched"] is not None
    # what bob may not read is not explained to him, not even its similarity
    refused = post(served, "explain", {"text": "red sneakers", "column": "hybrid+rerank", "id": hidden}, "wb-bob")
    assert refused.status_code == 404
    scored = post(served, "case", {"queries": ["red sneakers"], "columns": ["bm25"]}, "wb-bob")
    assert scored.status_code == 200


def test_a_caller_without_credentials_gets_the_clusters_401_and_the_browser_is_asked_for_them(served):
    r = post(served, "search", {"text": "red sneakers", "columns": ["bm25"]}, None)
    assert r.status_code == 401, r.text[:500]
    assert r.json()["status"] == 401
    assert r.headers["www-authenticate"].startswith("Basic")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    wrong = httpx.post(f"{served.url}/_dsr/api/search", json={"text": "red", "columns": ["bm25"]}, timeout=60,
                       headers={"Authorization": basic_auth_header("wb-alice", "not-her-Passw0rd!")})
    assert wrong.status_code == 401


def test_a_caller_without_rights_on_the_index_is_refused_by_the_cluster(served):
    r = post(served, "search", {"text": "red sneakers", "columns": ["hybrid+rerank"]}, "wb-carol")
    assert r.status_code == 403, r.text[:500]
    assert r.json()["error"]["type"] == "security_exception"


def test_the_page_itself_holds_no_data_and_needs_no_credentials(served):
    assert httpx.get(f"{served.url}/_dsr/", timeout=30).status_code == 200
    assert httpx.get(f"{served.url}/_dsr/api/info", timeout=30).json()["index"] == served.index
