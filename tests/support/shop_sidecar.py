"""What a shop's sidecar must hold after attach, sync or write-through: exactly the index's documents.

The shops of these tests name their title `name`; each vector must be a fresh hashing encoding of the
document's current title, and the item records must hold every document with that title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsr.backends.base import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords


def current_titles(cluster: SearchBackend, index: str) -> dict[str, str]:
    """The title (`name`) of every document of `index`, by id, after a refresh."""
    cluster.refresh(index)
    resp = cluster.client.search(index=index, body={"size": 10_000, "query": {"match_all": {}}})
    return {h["_id"]: h["_source"]["name"] for h in resp["hits"]["hits"]}


def assert_sidecar_equals_index(cluster: SearchBackend, index: str, sidecar: Path, *, dim: int) -> None:
    titles = current_titles(cluster, index)
    vectors = FaissIndex.load(sidecar, device="cpu")
    assert set(vectors.ids()) == set(titles)
    ids = sorted(titles)
    fresh = HashingEncoder(dim).encode_items([{"id": i, "title": titles[i]} for i in ids])
    np.testing.assert_allclose(vectors.vectors(ids), fresh, atol=1e-6)
    records = ItemRecords.open_existing(sidecar)
    assert records is not None
    held = records.get_many(ids)
    assert set(records.ids()) == set(titles)
    assert {i: held[i]["title"] for i in ids} == titles
    records.close()
