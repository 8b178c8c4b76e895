"""The sidecar HTTP app and its client, talking through an in-process transport."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from dsr.errors import VectorIndexError
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.remote import RemoteVectorIndex
from dsr.sidecar.server import create_app


@pytest.fixture
def index():
    x = np.eye(4, dtype=np.float32)
    idx = FaissIndex(4, device="cpu")
    idx.upsert(["a", "b", "c", "d"], x)
    return idx


@pytest.fixture
def remote(index, tmp_path):
    index.save(tmp_path)
    client = TestClient(create_app(index, directory=tmp_path, device="cpu"), base_url="http://sidecar")
    return RemoteVectorIndex("http://sidecar", client=client)


def test_health_and_stats(remote):
    assert remote.health() == {"status": "ok", "count": 4, "dim": 4}
    assert remote.stats()["kind"] == "flat"
    assert len(remote) == 4 and remote.dim == 4


def test_knn_matches_the_in_process_index(remote, index):
    q = np.array([[1, 0, 0, 0], [0, 0.6, 0.8, 0]], np.float32)
    scores, ids = remote.search(q, 2)
    local_scores, local_ids = index.search(q, 2)
    assert ids == local_ids
    np.testing.assert_allclose(scores, local_scores, rtol=1e-6)


def test_short_rows_come_back_padded(remote):
    scores, ids = remote.search(np.eye(4, dtype=np.float32)[:1], 10)
    assert len(ids[0]) == 4 and scores.shape == (1, 10) and np.isneginf(scores[0, 4:]).all()


def test_a_bad_request_is_a_clear_error(remote):
    with pytest.raises(VectorIndexError, match="shape"):
        remote.search(np.ones((1, 3), np.float32), 2)


def test_the_remote_index_is_read_only(remote):
    with pytest.raises(VectorIndexError, match="read-only"):
        remote.upsert(["x"], np.ones((1, 4), np.float32))


def test_reload_picks_up_a_newer_snapshot(remote, index, tmp_path):
    index.upsert(["e"], np.full((1, 4), 0.5, np.float32))
    index.save(tmp_path)
    assert remote.reload() == 5


def test_an_unreachable_sidecar_is_a_clear_error():
    transport = httpx.MockTransport(lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused")))
    client = httpx.Client(base_url="http://nowhere", transport=transport)
    with pytest.raises(VectorIndexError, match="unreachable"):
        RemoteVectorIndex("http://nowhere", client=client).health()


def test_neighbours_and_similarities_match_the_in_process_index(remote, index):
    q = np.array([0.6, 0.8, 0, 0], np.float32)
    found, local = remote.neighbours(q, 3), index.neighbours(q, 3)
    assert found.ids == local.ids and found.scores == pytest.approx(local.scores)
    assert remote.origin == "sidecar" and not remote.applies_filters
    assert remote.similarities(q, ["b", "a", "zz"]) == pytest.approx({"a": 0.6, "b": 0.8})
    assert remote.similarities(q, []) == {}


def test_a_bad_similarity_request_is_a_clear_error(remote):
    with pytest.raises(VectorIndexError, match="shape"):
        remote.similarities(np.ones(3, np.float32), ["a"])
    with pytest.raises(VectorIndexError, match="filter"):
        remote.neighbours(np.ones(4, np.float32), 2, {"brand": "acme"})


def test_the_similarity_endpoint_refuses_ids_that_are_not_strings(index):
    client = TestClient(create_app(index, device="cpu"))
    r = client.post("/similarity", json={"vector": [1, 0, 0, 0], "ids": ["a", 1]})
    assert r.status_code == 400 and "strings" in r.json()["error"]
    assert client.post("/similarity", json={"ids": ["a"]}).status_code == 400
    assert client.post("/similarity", json={"vector": [1, 0, 0, 0], "ids": ["a"]}).json() == {"scores": {"a": 1.0}}
