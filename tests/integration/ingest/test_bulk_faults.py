"""Bulk writes against real Elasticsearch and OpenSearch nodes behind a proxy that fails on demand.

The one retry layer of a bulk write is `streaming_bulk`'s: documents refused with 429 are sent again
after a backoff, and the ingest report counts those re-sends. A connection lost mid-bulk is not
retried underneath; it stops the ingest before its checkpoint moves, and the re-run loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsr.backends import SearchBackend, connect
from dsr.encoders.hashing import HashingEncoder
from dsr.errors import EngineUnavailable
from dsr.ingest.checkpoint import Checkpoint
from dsr.ingest.pipeline import IngestOptions, IngestReport, ingest
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords

from ...support.relay_proxy import CUT, Answer, RelayProxy

REFUSAL = {"error": {"type": "es_rejected_execution_exception", "reason": "rejected execution (queue full)"},
           "status": 429}


class FaultyProxy(RelayProxy):
    """Relays every request to the cluster, except the bulk requests it is told to refuse or cut off."""

    def __init__(self, upstream: str) -> None:
        self.refuse = 0  # answer the next this many bulk requests with 429
        self.cut_at: int | None = None  # close the connection on this bulk request (1-based), unanswered
        self.bulk_requests = 0
        super().__init__(upstream)

    def step_in(self, path: str, headers: dict[str, str]) -> Answer | str | None:
        if "/_bulk" not in path:
            return None
        with self._lock:
            self.bulk_requests += 1
            if self.cut_at == self.bulk_requests:
                return CUT
            if self.refuse > 0:
                self.refuse -= 1
                return (429, {"content-type": "application/json", "x-elastic-product": "Elasticsearch"},
                        json.dumps(REFUSAL).encode())
        return None


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


@pytest.fixture
def proxied(cluster: SearchBackend) -> Iterator[tuple[FaultyProxy, SearchBackend]]:
    proxy = FaultyProxy(cluster.url)
    backend = connect(ConnectionSettings(engine_url=proxy.url), flavor=cluster.flavor)
    yield proxy, backend
    backend.close()
    proxy.close()


def catalog(path: Path, n: int) -> list[dict]:
    rows = [{"id": f"p{i:03d}", "title": f"cordless drill {i}", "brand": "acme", "price": 10.0 + i}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def run_ingest(backend: SearchBackend, index: str, path: Path, work: Path) -> IngestReport:
    return ingest(path, backend=backend, index=index, encoder=HashingEncoder(16), sidecar_dir=work / "sidecar",
                  rejects_path=work / "rejects.jsonl", checkpoint_path=work / "checkpoint.json",
                  options=IngestOptions(batch_size=10, progress=False))


def test_refused_documents_are_sent_again_after_a_backoff_and_the_report_counts_it(proxied, cluster, index_name,
                                                                                   tmp_path):
    proxy, backend = proxied
    rows = catalog(tmp_path / "c.jsonl", 30)
    proxy.refuse = 2  # the first batch's bulk request is refused twice
    report = run_ingest(backend, index_name, tmp_path / "c.jsonl", tmp_path)
    assert report.cluster_retries == 2 and report.written == 30 and report.rejected == 0
    assert proxy.bulk_requests == 3 + 2  # three batches, two of them first refused
    cluster.refresh(index_name)
    assert set(cluster.iter_ids(index_name)) == {r["id"] for r in rows}


def test_a_connection_cut_mid_ingest_stops_it_and_the_rerun_loses_nothing(proxied, cluster, index_name, tmp_path):
    proxy, backend = proxied
    rows = catalog(tmp_path / "c.jsonl", 50)
    proxy.cut_at = 3  # the third batch never reaches the cluster
    with pytest.raises(EngineUnavailable, match="cannot reach the cluster"):
        run_ingest(backend, index_name, tmp_path / "c.jsonl", tmp_path)
    assert proxy.bulk_requests == 3  # cut off once, not retried underneath
    checkpoint = Checkpoint.load(tmp_path / "checkpoint.json")
    assert checkpoint is not None and checkpoint.rows_done == 20

    report = run_ingest(cluster, index_name, tmp_path / "c.jsonl", tmp_path)
    assert report.resumed_from_row == 20 and report.written == 50 and report.rejected == 0
    ids = {r["id"] for r in rows}
    cluster.refresh(index_name)
    assert set(cluster.iter_ids(index_name)) == ids
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == ids
    records = ItemRecords.open_existing(tmp_path / "sidecar")
    assert records is not None and set(records.ids()) == ids
