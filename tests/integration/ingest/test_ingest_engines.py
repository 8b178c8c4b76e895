"""`dsr ingest` / `dsr verify` against real Elasticsearch and OpenSearch nodes.

A 10k-item synthetic catalog with planted bad rows is ingested by a `dsr ingest` subprocess that is
SIGKILLed midway and re-run; both stores must then hold exactly the good items, the rejects file
exactly the planted rows. Updates, tombstones, `--delete` and drift repair follow on the same index.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dsr.backends import connect
from dsr.cli import cli
from dsr.encoders.hashing import HashingEncoder
from dsr.engines import free_port
from dsr.errors import EngineUnavailable
from dsr.ingest.writer import ClusterWriter
from dsr.logs.synthetic import make_world
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords, records_path

pytestmark = pytest.mark.slow

N_ITEMS = 10_000
MODEL = "hashing:64"


def planted_catalog(path: Path) -> tuple[list[dict], list[dict]]:
    """10k good rows with bad rows planted among them; returns (good rows, expected rejects)."""
    good = make_world(n_items=N_ITEMS, n_queries=0, n_users=1).catalog
    bad: dict[int, tuple[bytes, str | None, str]] = {  # insert before good row i: raw, id, reason
        10: (b'{"id": "bad-no-title", "price": 3}', "bad-no-title", "missing title"),
        500: (b'{"id": "bad-price", "title": "Lamp", "price": "abc"}', "bad-price", "price must be a number"),
        2500: (b'{"id": "p000007", "title": "Second copy"}', "p000007", "duplicate id (first seen on line 8)"),
        4000: (b'{"id": "bad-json", "title": ', None, "invalid JSON"),
        6000: (b'{"id": "bad-utf8", "title": "caf\xe9"}', None, "invalid UTF-8"),
        7000: (b'{"id": "bad-long", "title": "' + b"x" * 1200 + b'"}', "bad-long", "title is longer than"),
        8000: (b'{"title": "no id"}', None, "missing id"),
        # refused by the cluster itself: attributes.color is mapped as text by then
        9000: (b'{"id": "bad-mapping", "title": "Odd", "attributes": {"color": {"r": 1}}}', "bad-mapping",
               "cluster refused the document (HTTP 400)"),
    }
    expected = []
    line = 0
    with path.open("wb") as f:
        for i, row in enumerate(good):
            if i in bad:
                raw, item_id, reason = bad[i]
                line += 1
                f.write(raw + b"\n")
                expected.append({"line": line, "id": item_id, "reason": reason,
                                 "raw": raw.decode("utf-8", "backslashreplace")})
            line += 1
            f.write(json.dumps(row).encode() + b"\n")
    return good, expected


def dsr_command(url: str, data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from dsr.cli import main; main()", "--engine", url,
            "--data-dir", str(data_dir), *args]


def run_cli(url: str, data_dir: Path, *args: str):
    return CliRunner().invoke(cli, ["--engine", url, "--data-dir", str(data_dir), *args])


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request):
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


def test_killed_ingest_resumes_exactly_then_updates_deletes_and_verifies(cluster, index_name, tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    good, expected_rejects = planted_catalog(catalog)
    data_dir = tmp_path / "data"
    checkpoint = data_dir / "ingest" / f"{index_name}.checkpoint.json"
    args = ["ingest", str(catalog), "--index", index_name, "--model", MODEL, "--batch-size", "50", "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    # 1. start, wait until a few thousand rows are checkpointed, SIGKILL
    proc = subprocess.Popen(dsr_command(cluster.url, data_dir, *args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    rows_done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            rows_done = json.loads(checkpoint.read_text())["rows_done"]
        except (OSError, ValueError, KeyError):
            rows_done = 0
        if rows_done >= 2_000:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert 2_000 <= rows_done < N_ITEMS

    # 2. the same command again finishes the job
    rerun = subprocess.run(dsr_command(cluster.url, data_dir, *args, "--report", str(tmp_path / "r.json")),
                           env=env, capture_output=True, timeout=600)
    assert rerun.returncode == 4, rerun.stderr.decode()[-2000:]  # rows were rejected
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resumed_from_row"] > 0
    assert report["written"] == N_ITEMS and report["rejected"] == len(expected_rejects)
    assert not checkpoint.exists()

    # the rejects file holds each planted row exactly once, in order
    rejects = [json.loads(line) for line in (data_dir / "ingest" / f"{index_name}.rejects.jsonl").open()]
    assert [(r["line"], r["id"], r["raw"]) for r in rejects] == [
        (e["line"], e["id"], e["raw"]) for e in expected_rejects]
    for got, want in zip(rejects, expected_rejects, strict=True):
        assert got["reason"].startswith(want["reason"]), (got, want)

    # both stores hold exactly the good items, once each
    good_ids = {row["id"] for row in good}
    cluster.refresh(index_name)
    assert cluster.count(index_name) == N_ITEMS
    assert set(cluster.iter_ids(index_name)) == good_ids
    sidecar_dir = data_dir / "sidecar" / index_name
    sidecar = FaissIndex.load(sidecar_dir, device="cpu")
    assert len(sidecar) == N_ITEMS and set(sidecar.ids()) == good_ids
    encoder = HashingEncoder(64)
    np.testing.assert_allclose(sidecar.vectors(["p000123"]), encoder.encode_items([good[123]]), atol=1e-6)
    assert sidecar.search(encoder.encode_items([good[42]]), 1)[1] == [["p000042"]]
    records = ItemRecords.open_existing(sidecar_dir)  # the ranker's fields, beside the vectors
    assert records is not None and set(records.ids()) == good_ids
    assert records.get_many(["p000123"])["p000123"]["title"] == good[123]["title"]

    # 3. changed rows update both stores; tombstones and --delete remove from both; re-ingest is idempotent
    changed = {f"p{i:06d}" for i in range(100, 110)}
    tombstoned = {f"p{i:06d}" for i in range(200, 205)}
    v2 = tmp_path / "catalog-v2.jsonl"
    with v2.open("w") as f:
        for row in good:
            if row["id"] in changed:
                row = {**row, "title": f"Renamed {row['title']}"}
            if row["id"] in tombstoned:
                row = {"id": row["id"], "_deleted": True}
            f.write(json.dumps(row) + "\n")
    result = run_cli(cluster.url, data_dir, "ingest", str(v2), "--index", index_name, "--model", MODEL, "--quiet")
    assert result.exit_code == 0, result.output
    deletions = tmp_path / "delete.txt"
    deletions.write_text("p000300\np000301\nnever-existed\n")
    result = run_cli(cluster.url, data_dir, "ingest", "--delete", str(deletions), "--index", index_name,
                     "--model", MODEL, "--quiet")
    assert result.exit_code == 0, result.output

    remaining = good_ids - tombstoned - {"p000300", "p000301"}
    cluster.refresh(index_name)
    assert set(cluster.iter_ids(index_name)) == remaining
    sidecar = FaissIndex.load(sidecar_dir, device="cpu")
    assert set(sidecar.ids()) == remaining and len(sidecar) == len(remaining)
    renamed = cluster.mget(index_name, ["p000105"])["p000105"]
    assert renamed["title"].startswith("Renamed ")
    np.testing.assert_allclose(sidecar.vectors(["p000105"]), encoder.encode_items([renamed]), atol=1e-6)
    assert set(records.ids()) == remaining
    assert records.get_many(["p000105"])["p000105"]["title"] == renamed["title"]

    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name)
    assert result.exit_code == 0 and result.output.startswith("clean"), result.output

    # 4. drift: documents deleted behind dsr's back are reported, then repaired
    cluster.delete(index_name, ["p000400", "p000401"])
    cluster.refresh(index_name)
    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name, "--json")
    assert result.exit_code == 4
    drift = json.loads(result.output)
    assert drift["missing_in_cluster"] == 2 and drift["missing_in_cluster_sample"] == ["p000400", "p000401"]
    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name, "--repair", "--model", MODEL)
    assert result.exit_code == 0, result.output
    assert run_cli(cluster.url, data_dir, "verify", "--index", index_name).exit_code == 0


def ingest_synthetic(cluster, index_name: str, tmp_path: Path, n_items: int) -> tuple[list[dict], Path]:
    """A synthetic catalog of `n_items` ingested with the hashing encoder; its rows and the data dir."""
    catalog = tmp_path / "c.jsonl"
    rows = make_world(n_items=n_items, n_queries=0, n_users=1).catalog
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data_dir = tmp_path / "data"
    assert run_cli(cluster.url, data_dir, "ingest", str(catalog), "--index", index_name, "--model", MODEL,
                   "--quiet").exit_code == 0
    return rows, data_dir


def test_verify_repair_re_encodes_items_missing_from_the_sidecar(cluster, index_name, tmp_path):
    rows, data_dir = ingest_synthetic(cluster, index_name, tmp_path, 300)
    # the sidecar loses items (e.g. restored from an old backup)
    sidecar_dir = data_dir / "sidecar" / index_name
    sidecar = FaissIndex.load(sidecar_dir, device="cpu")
    sidecar.delete(["p000001", "p000002", "p000003"])
    sidecar.save(sidecar_dir)
    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name, "--json")
    assert result.exit_code == 4 and json.loads(result.output)["missing_in_sidecar"] == 3
    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name, "--repair", "--model", MODEL)
    assert result.exit_code == 0, result.output
    repaired = FaissIndex.load(sidecar_dir, device="cpu")
    assert len(repaired) == 300
    np.testing.assert_allclose(repaired.vectors(["p000002"]), HashingEncoder(64).encode_items([rows[2]]), atol=1e-6)


def test_verify_repair_writes_the_ranker_records_a_sidecar_lacks(cluster, index_name, tmp_path):
    rows, data_dir = ingest_synthetic(cluster, index_name, tmp_path, 120)
    sidecar_dir = data_dir / "sidecar" / index_name
    records_path(sidecar_dir).unlink()  # a sidecar written before dsr kept records
    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name, "--json")
    assert result.exit_code == 4 and json.loads(result.output)["missing_records"] == 120
    result = run_cli(cluster.url, data_dir, "verify", "--index", index_name, "--repair", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["records_added"] == 120, result.output
    records = ItemRecords.open_existing(sidecar_dir)
    assert records is not None and len(records) == 120
    assert records.get_many(["p000007"])["p000007"]["title"] == rows[7]["title"]
    assert run_cli(cluster.url, data_dir, "verify", "--index", index_name).exit_code == 0


def test_embedding_field_is_searchable_by_the_engines_own_knn(cluster, index_name, tmp_path):
    rows, _ = ingest_synthetic(cluster, index_name, tmp_path, 200)
    query = HashingEncoder(64).encode_items([rows[17]])[0]
    hits = cluster.knn_search(index_name, query, k=3)
    assert hits[0].id == "p000017"


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_a_cluster_that_cannot_be_reached_stops_the_write_at_once(index_name, flavor):
    backend = connect(ConnectionSettings(engine_url=f"http://127.0.0.1:{free_port()}"), flavor=flavor)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="cannot reach the cluster"):
        ClusterWriter(backend, index_name).upsert([{"id": "a", "title": "A"}])
    assert time.monotonic() - started < 5  # no retry layer stacked under the bulk write
    backend.close()

