"""`dsr attach` against real Elasticsearch and OpenSearch nodes: a shop's own index, no catalog file.

The shop's index has its own mapping and names (the title at `product.name`, the brand at
`manufacturer.name`, a list of categories), two shards, and some documents without a title. Attach
must detect the names, build a sidecar holding exactly the encodable documents, leave the shop's
documents as they were, resume a SIGKILLed run without losing or doubling anything, and give a
sidecar a hybrid search finds the items in by their mapped titles.
"""

from __future__ import annotations

import contextlib
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

from dsr.backends import IndexSpec
from dsr.backends.documents import PIT_DIALECTS, Cursor
from dsr.cli import cli
from dsr.encoders.hashing import HashingEncoder
from dsr.errors import IndexNotFound, UsageError
from dsr.ingest.attach import AttachOptions, attach
from dsr.search.hybrid import HybridSearcher
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords

MODEL = "hashing:64"
COLOURS = ("crimson", "teal", "amber", "ivory", "cobalt", "olive", "coral", "slate")
KINDS = ("runner", "boot", "sandal", "loafer", "sneaker")


def shop_source(i: int) -> dict:
    """The shop's document `i`; every 25th has no title (its product object lacks a name)."""
    product = {"sku": f"SKU-{i:05d}"}
    if i % 25 != 7:
        product["name"] = f"{COLOURS[i % len(COLOURS)]} {KINDS[i % len(KINDS)]} model{i}"
    return {"product": product, "manufacturer": {"name": f"Maker{i % 9}", "country": "DE"},
            "categories": ["Shoes", KINDS[i % len(KINDS)].title()], "price": round(10 + i * 0.5, 2),
            "stock": {"warehouse": i % 4}}


def make_shop_index(cluster, index: str, n: int, *, knn: bool = False) -> tuple[set[str], set[str]]:
    """The shop's index with `n` documents; returns (all ids, ids without a title).

    `knn`: an OpenSearch index is created with `index.knn: true`, without which it cannot take a vector field.
    """
    settings = {"number_of_shards": 2, "number_of_replicas": 0}
    if knn and cluster.flavor == "opensearch":
        settings["index.knn"] = True
    cluster.client.indices.create(index=index, body={
        "settings": settings,
        "mappings": {"properties": {
            "product": {"properties": {"name": {"type": "text"}, "sku": {"type": "keyword"}}},
            "manufacturer": {"properties": {"name": {"type": "keyword"}, "country": {"type": "keyword"}}},
            "categories": {"type": "keyword"}, "price": {"type": "float"}}}})
    for start in range(0, n, 1000):
        body = []
        for i in range(start, min(n, start + 1000)):
            body += [{"index": {"_index": index, "_id": f"doc-{i:05d}"}}, shop_source(i)]
        response = cluster.client.bulk(body=body)
        assert not response["errors"]
    cluster.refresh(index)
    ids = {f"doc-{i:05d}" for i in range(n)}
    return ids, {f"doc-{i:05d}" for i in range(n) if i % 25 == 7}


def sources(cluster, index: str, ids: set[str]) -> dict[str, dict]:
    out = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        response = cluster.client.mget(index=index, body={"ids": ordered[start:start + 500]})
        out.update({d["_id"]: (d["_source"], d["_version"]) for d in response["docs"]})
    return out


def dsr_command(url: str, data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from dsr.cli import main; main()", "--engine", url,
            "--data-dir", str(data_dir), *args]


def rejects_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request):
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


@pytest.fixture
def shop_index(cluster, request):
    """A fresh index name, deleted from the cluster at the end."""
    name = f"dsr-shop-{os.urandom(5).hex()}"
    yield name
    cluster.delete_index(name)


def test_attach_detects_the_shops_names_and_builds_the_sidecar_of_exactly_the_titled_documents(
        cluster, shop_index, tmp_path):
    ids, untitled = make_shop_index(cluster, shop_index, 240)
    before = sources(cluster, shop_index, ids)
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(cli, ["--engine", cluster.url, "--data-dir", str(data_dir), "attach",
                                      "--index", shop_index, "--model", MODEL, "--batch-size", "50",
                                      "--report", str(tmp_path / "report.json")])
    assert result.exit_code == 4, result.output  # documents were rejected
    lines = result.output.splitlines()
    assert "title <- product.name (detected)" in lines
    assert "brand <- manufacturer.name (detected)" in lines
    assert "category <- categories (detected)" in lines
    assert "price <- price (detected)" in lines
    assert "description <- (none found)" in lines
    assert lines[-1].startswith(f"done: read 240 documents of {shop_index}, written {240 - len(untitled)}, "
                                f"rejected {len(untitled)}")

    # the sidecar holds the index's ids minus the rejected ones, with the mapped items as records
    sidecar_dir = data_dir / "sidecar" / shop_index
    sidecar = FaissIndex.load(sidecar_dir, device="cpu")
    assert set(sidecar.ids()) == ids - untitled and len(sidecar) == len(ids - untitled)
    records = ItemRecords.open_existing(sidecar_dir)
    assert records is not None and set(records.ids()) == ids - untitled
    record = records.get_many(["doc-00012"])["doc-00012"]
    assert record == {"id": "doc-00012", "title": shop_source(12)["product"]["name"], "brand": "Maker3",
                      "category": "Shoes > Sandal", "price": 16.0}
    item = {"title": record["title"], "brand": "Maker3", "category": "Shoes > Sandal"}
    np.testing.assert_allclose(sidecar.vectors(["doc-00012"]), HashingEncoder(64).encode_items([item]), atol=1e-6)

    # each untitled document is in the rejects file once, with the reason and its source
    rejects = rejects_of(data_dir / "attach" / f"{shop_index}.rejects.jsonl")
    assert sorted(r["id"] for r in rejects) == sorted(untitled)
    assert {r["reason"] for r in rejects} == {"no title after mapping (title <- product.name)"}
    assert json.loads(rejects[0]["raw"]) == before[rejects[0]["id"]][0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["read"] == 240 and report["rejected"] == len(untitled) and report["exit_code"] == 4
    assert not (data_dir / "attach" / f"{shop_index}.checkpoint.json").exists()

    # the shop's documents are as they were: same sources, not even re-written
    assert sources(cluster, shop_index, ids) == before

    # a hybrid search over the shop's index and the sidecar finds items by their mapped titles
    encoder = HybridSearcher(cluster, shop_index, HashingEncoder(64), sidecar, item_records=records)
    for n in (12, 101, 233):
        title = shop_source(n)["product"]["name"]
        hits = encoder.search(title, size=5)
        assert hits and hits[0].id == f"doc-{n:05d}", (title, [h.id for h in hits])
    records.close()


def test_a_killed_attach_resumes_from_its_cursor_and_ends_with_nothing_lost_or_doubled(
        cluster, shop_index, tmp_path):
    n = 5000
    ids, untitled = make_shop_index(cluster, shop_index, n)
    data_dir = tmp_path / "data"
    checkpoint = data_dir / "attach" / f"{shop_index}.checkpoint.json"
    args = ["attach", "--index", shop_index, "--model", MODEL, "--batch-size", "10",
            "--field", "title=product.name", "--field", "brand=manufacturer.name"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    # 1. start, wait until the first pages are checkpointed, SIGKILL
    proc = subprocess.Popen(dsr_command(cluster.url, data_dir, *args), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    read = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            read = json.loads(checkpoint.read_text())["counts"]["read"]
        except (OSError, ValueError, KeyError):
            read = 0
        if read >= 100:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert 100 <= read < n
    killed_at = json.loads(checkpoint.read_text())

    # 2. the same command again resumes from the checkpoint's cursor and finishes
    rerun = subprocess.run(dsr_command(cluster.url, data_dir, *args, "--report", str(tmp_path / "r.json")),
                           env=env, capture_output=True, timeout=600)
    assert rerun.returncode == 4, rerun.stderr.decode()[-2000:]
    output = rerun.stderr.decode().splitlines()
    assert "title <- product.name (given)" in output and "brand <- manufacturer.name (given)" in output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resumed"] is True and report["restarted"] is False
    assert report["done_before_resume"] == killed_at["counts"]["read"]
    assert report["read"] == n and report["rejected"] == len(untitled)
    assert report["written"] == n - len(untitled)
    assert not checkpoint.exists()

    sidecar_dir = data_dir / "sidecar" / shop_index
    sidecar = FaissIndex.load(sidecar_dir, device="cpu")
    assert set(sidecar.ids()) == ids - untitled and len(sidecar) == len(ids - untitled)
    records = ItemRecords.open_existing(sidecar_dir)
    assert records is not None and set(records.ids()) == ids - untitled
    records.close()
    rejects = rejects_of(data_dir / "attach" / f"{shop_index}.rejects.jsonl")
    assert sorted(r["id"] for r in rejects) == sorted(untitled)  # each once: none lost, none doubled


def test_attach_again_removes_what_the_index_no_longer_holds(cluster, shop_index, tmp_path):
    ids, untitled = make_shop_index(cluster, shop_index, 60)
    data_dir = tmp_path / "data"
    invoke = ["--engine", cluster.url, "--data-dir", str(data_dir), "attach", "--index", shop_index,
              "--model", MODEL, "--quiet"]
    assert CliRunner().invoke(cli, invoke).exit_code == 4
    cluster.delete(shop_index, ["doc-00001", "doc-00002"])
    cluster.client.index(index=shop_index, id="doc-00003", body={"manufacturer": {"name": "X"}})  # title gone
    cluster.refresh(shop_index)
    assert CliRunner().invoke(cli, invoke).exit_code == 4
    sidecar = FaissIndex.load(data_dir / "sidecar" / shop_index, device="cpu")
    assert set(sidecar.ids()) == ids - untitled - {"doc-00001", "doc-00002", "doc-00003"}


def test_write_vectors_adds_the_vector_field_alone_to_the_shops_documents(cluster, shop_index, tmp_path):
    ids, untitled = make_shop_index(cluster, shop_index, 120, knn=True)
    before = sources(cluster, shop_index, ids)
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(cli, ["--engine", cluster.url, "--data-dir", str(data_dir), "attach",
                                      "--index", shop_index, "--model", MODEL, "--write-vectors", "--batch-size", "40"])
    assert result.exit_code == 4, result.output
    cluster.refresh(shop_index)
    after = sources(cluster, shop_index, ids)
    sidecar = FaissIndex.load(data_dir / "sidecar" / shop_index, device="cpu")
    assert set(sidecar.ids()) == ids - untitled
    for doc_id in ids:
        source = dict(after[doc_id][0])
        vector = source.pop("embedding", None)
        assert source == before[doc_id][0]  # every field of the shop's as it was
        if doc_id in untitled:
            assert vector is None and after[doc_id][1] == before[doc_id][1]  # not written at all
        else:
            np.testing.assert_allclose(vector, sidecar.vectors([doc_id])[0], atol=1e-6)
    # the engine's own kNN finds the items by their mapped titles
    encoder = HashingEncoder(64)
    for n in (3, 64):
        hits = cluster.knn_search(shop_index, encoder.encode_queries([shop_source(n)["product"]["name"]])[0], k=1)
        assert [h.id for h in hits] == [f"doc-{n:05d}"]


def test_write_vectors_is_refused_before_anything_is_written_where_the_index_cannot_take_them(
        os_backend, tmp_path):
    index = f"dsr-shop-{os.urandom(5).hex()}"
    try:
        ids, _ = make_shop_index(os_backend, index, 30)  # an OpenSearch index without index.knn
        before = sources(os_backend, index, ids)
        data_dir = tmp_path / "data"
        result = CliRunner().invoke(cli, ["--engine", os_backend.url, "--data-dir", str(data_dir), "attach",
                                          "--index", index, "--model", MODEL, "--write-vectors"])
        assert isinstance(result.exception, UsageError), result.output
        assert "index.knn" in str(result.exception) and "nothing was written" in str(result.exception)
        assert not (data_dir / "sidecar" / index).exists()
        assert sources(os_backend, index, ids) == before
        assert "embedding" not in os_backend.client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    finally:
        os_backend.delete_index(index)


def test_attach_to_an_index_that_does_not_exist_is_an_error(cluster, tmp_path):
    result = CliRunner().invoke(cli, ["--engine", cluster.url, "--data-dir", str(tmp_path), "attach",
                                      "--index", "dsr-no-such-shop-index", "--model", MODEL])
    assert isinstance(result.exception, IndexNotFound)
    assert "dsr-no-such-shop-index" in str(result.exception)


def test_the_embedded_index_is_read_in_id_order_and_resumed_after_any_page(embedded_backend, tmp_path):
    embedded_backend.ensure_index(IndexSpec("shop"))
    docs = [{"id": f"e{i:03d}", "name": f"item {i}"} for i in range(23)]
    assert embedded_backend.bulk_upsert("shop", docs).ok
    pages = list(embedded_backend.iter_documents("shop", batch=5))
    assert [len(p.documents) for p in pages] == [5, 5, 5, 5, 3]
    assert [d.id for p in pages for d in p.documents] == [d["id"] for d in docs]
    rest = list(embedded_backend.iter_documents("shop", batch=5, after=Cursor.from_dict(pages[1].cursor.to_dict())))
    assert [d.id for p in rest for d in p.documents] == [d["id"] for d in docs[10:]]
    report = attach(backend=embedded_backend, index="shop", encoder=HashingEncoder(64), sidecar_dir=tmp_path / "sc",
                    rejects_path=tmp_path / "rejects.jsonl", checkpoint_path=tmp_path / "cp.json",
                    options=AttachOptions(batch_size=7, progress=False))
    assert report.field_map[0] == "title <- name (detected)" and report.exit_code == 0
    assert set(FaissIndex.load(tmp_path / "sc", device="cpu").ids()) == {d["id"] for d in docs}


def test_a_read_whose_point_in_time_expired_goes_on_where_it_can_and_starts_over_where_it_cannot(
        cluster, shop_index, tmp_path):
    ids, untitled = make_shop_index(cluster, shop_index, 95)
    first = list(cluster.iter_documents(shop_index, batch=10))
    order = [d.id for p in first for d in p.documents]
    assert sorted(order) == sorted(ids)  # every document once
    cursor = first[3].cursor
    # the read of which this cursor is the 4th page died; its point in time is closed (as if expired)
    with contextlib.suppress(Exception):
        PIT_DIALECTS[cluster.flavor].close(cluster.client, cursor.pit)
    rest = list(cluster.iter_documents(shop_index, batch=10, after=cursor))
    got = [d.id for p in rest for d in p.documents]
    if cluster.flavor == "opensearch":  # `_id` order: a new point in time carries on after the last id
        assert got == order[40:] and not any(p.cursor.restarted for p in rest)
    else:  # `_shard_doc` means nothing in another point in time: the read starts again from the top
        assert sorted(got) == sorted(ids) and all(p.cursor.restarted for p in rest)

    # attach resumed from a checkpoint whose point in time expired still ends with each document once
    data_dir = tmp_path / "data"
    checkpoint = data_dir / "attach" / f"{shop_index}.checkpoint.json"
    args = ["--engine", cluster.url, "--data-dir", str(data_dir), "attach", "--index", shop_index, "--model", MODEL,
            "--batch-size", "10", "--quiet", "--report", str(tmp_path / "r.json")]
    assert CliRunner().invoke(cli, [*args, "--max-rejects", "0"]).exit_code == 5  # stops at the first reject
    stopped = json.loads(checkpoint.read_text())
    assert 0 < stopped["counts"]["read"] < 95
    with contextlib.suppress(Exception):
        PIT_DIALECTS[cluster.flavor].close(cluster.client, stopped["cursor"]["pit"])
    assert CliRunner().invoke(cli, args).exit_code == 4
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resumed"] is True and report["restarted"] is (cluster.flavor == "elasticsearch")
    assert report["read"] == 95 and report["rejected"] == len(untitled)
    assert set(FaissIndex.load(data_dir / "sidecar" / shop_index, device="cpu").ids()) == ids - untitled
    rejects = rejects_of(data_dir / "attach" / f"{shop_index}.rejects.jsonl")
    assert sorted(r["id"] for r in rejects) == sorted(untitled)
