"""`dsr ingest` into an index the shop already has, on real Elasticsearch and OpenSearch nodes.

The shop's index has its own analyzer, mapping and fields dsr knows nothing of (a keyword, an
integer, a date, an object and a nested object). dsr adds only its vector field: every document keeps
every field and value, no document is created or deleted, the vector field is mapped for the engine's
kNN where the engine allows it, the sidecar holds the vectors, and a hybrid search works over both.
A conflicting mapping is refused before anything is written; `--replace-documents` hands the index
over to dsr, which then replaces documents as it does in its own indexes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from dsr.backends.base import IndexSpec, SearchBackend
from dsr.cli import cli
from dsr.encoders.hashing import HashingEncoder
from dsr.errors import UsageError
from dsr.ingest import EXIT_OK, EXIT_REJECTED, IngestOptions, IngestReport, ingest, verify
from dsr.ingest.target import NOT_IN_INDEX
from dsr.search.hybrid import HybridSearcher
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords

DIM = 16
MODEL = "hashing:16"
VECTOR_TYPES = {"elasticsearch": "dense_vector", "opensearch": "knn_vector"}

SHOP_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1, "number_of_replicas": 0,
    "analysis": {"analyzer": {"shop_text": {"type": "custom", "tokenizer": "standard",
                                               "filter": ["lowercase", "stop"]}}},
}
SHOP_PROPERTIES: dict[str, Any] = {
    "title": {"type": "text", "analyzer": "shop_text"},
    "sku": {"type": "keyword"},
    "stock": {"type": "integer"},
    "launched": {"type": "date"},
    "supplier": {"properties": {"name": {"type": "keyword"}, "country": {"type": "keyword"}}},
    "variants": {"type": "nested", "properties": {"size": {"type": "keyword"}, "color": {"type": "keyword"}}},
}
SHOP_DOCS: dict[str, dict[str, Any]] = {
    "1": {"title": "Trail running shoe", "sku": "TR-1", "stock": 12, "launched": "2024-03-01",
          "supplier": {"name": "Acme", "country": "DE"},
          "variants": [{"size": "42", "color": "red"}, {"size": "43", "color": "blue"}]},
    "2": {"title": "Waterproof hiking boot", "sku": "HB-2", "stock": 0, "launched": "2023-11-15",
          "supplier": {"name": "Bergwerk", "country": "AT"}, "variants": [{"size": "44", "color": "brown"}]},
    "3": {"title": "Café espresso cup", "sku": "EC-3", "stock": 240, "launched": "2022-01-20",
          "supplier": {"name": "Porzellan", "country": "IT"}, "variants": []},
    "4": {"title": "Wool socks", "sku": "WS-4", "stock": 5, "launched": "2021-07-07",
          "supplier": {"name": "Acme", "country": "DE"}, "variants": [{"size": "M", "color": "grey"}]},
}
CATALOG = [
    {"id": "1", "title": "Trail running shoe", "price": 89.0},
    {"id": "2", "title": "Waterproof hiking boot", "price": 129.0},
    {"id": "3", "title": "Cafe espresso cup", "price": 9.5},
    {"id": "new-1", "title": "Rain jacket", "price": 59.0},  # the shop's index does not hold it
]


@pytest.fixture(params=["elasticsearch", "opensearch"])
def cluster(request: pytest.FixtureRequest) -> SearchBackend:
    return request.getfixturevalue({"elasticsearch": "es_backend", "opensearch": "os_backend"}[request.param])


def create_shop_index(backend: Any, name: str, *, knn: bool = True, properties: dict[str, Any] | None = None,
                      settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The shop's own index and documents, made without dsr; returns each document's `_source` and `_version`."""
    body_settings = {**SHOP_SETTINGS, **(settings or {})}
    if backend.flavor == "opensearch" and knn:
        body_settings["index.knn"] = True
    backend.client.indices.create(index=name, body={"settings": body_settings,
                                                    "mappings": {"properties": properties or SHOP_PROPERTIES}})
    for doc_id, doc in SHOP_DOCS.items():
        backend.client.index(index=name, id=doc_id, body=doc)
    backend.refresh(name)
    return stored(backend, name)


def stored(backend: Any, name: str) -> dict[str, dict[str, Any]]:
    backend.refresh(name)
    hits = backend.client.search(index=name, body={"query": {"match_all": {}}, "size": 100, "version": True})
    return {h["_id"]: {"source": h["_source"], "version": h["_version"]} for h in hits["hits"]["hits"]}


def mapping(backend: Any, name: str) -> dict[str, Any]:
    return dict(backend.client.indices.get_mapping(index=name))[name]["mappings"]


def analysis(backend: Any, name: str) -> dict[str, Any]:
    return dict(backend.client.indices.get_settings(index=name))[name]["settings"]["index"]["analysis"]


def write_catalog(path: Path, rows: list[dict[str, Any]] = CATALOG) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(backend: SearchBackend, index: str, work: Path, **options: Any) -> IngestReport:
    return ingest(work / "catalog.jsonl", backend=backend, index=index, encoder=HashingEncoder(DIM),
                  sidecar_dir=work / "sidecar", rejects_path=work / "rejects.jsonl",
                  checkpoint_path=work / "checkpoint.json",
                  options=IngestOptions(batch_size=2, progress=False, **options), model={"model": MODEL})


def run_cli(url: str, work: Path, *args: str):
    return CliRunner().invoke(cli, ["--engine", url, "--data-dir", str(work / "data"), *args])


def rejects(work: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (work / "rejects.jsonl").read_text().splitlines()]


def test_ingest_into_a_shop_index_adds_only_the_vector_field(cluster, index_name, tmp_path):
    before = create_shop_index(cluster, index_name)
    shop_analysis = analysis(cluster, index_name)
    write_catalog(tmp_path / "catalog.jsonl")

    report = run(cluster, index_name, tmp_path)

    assert (report.written, report.rejected, report.exit_code) == (3, 1, EXIT_REJECTED)
    assert report.cluster_writes == "vectors"
    assert [(r["id"], r["reason"]) for r in rejects(tmp_path)] == [("new-1", NOT_IN_INDEX)]
    after = stored(cluster, index_name)
    assert set(after) == set(SHOP_DOCS)  # nothing created, nothing deleted
    for doc_id, was in before.items():  # every field and value the shop stored, unchanged
        source = dict(after[doc_id]["source"])
        vector = source.pop("embedding", None)
        assert source == was["source"] == SHOP_DOCS[doc_id]
        touched = doc_id in {"1", "2", "3"}
        assert after[doc_id]["version"] == was["version"] + (1 if touched else 0)
        assert (vector is not None) == touched
    assert any("_source" in note for note in report.notes)  # the consequence is said

    # the shop's mapping and analysis are kept; the vector is mapped for the engine's kNN
    now = mapping(cluster, index_name)
    assert {k: v for k, v in now["properties"].items() if k != "embedding"} == SHOP_PROPERTIES
    assert now["properties"]["embedding"]["type"] == VECTOR_TYPES[cluster.flavor]
    assert analysis(cluster, index_name) == shop_analysis
    encoder = HashingEncoder(DIM)
    hits = cluster.knn_search(index_name, encoder.encode_items([CATALOG[1]])[0], k=1)
    assert hits[0].id == "2" and "embedding" not in hits[0].source

    # the sidecar holds the vectors of the catalog rows the index holds, and the ranker's records
    sidecar = FaissIndex.load(tmp_path / "sidecar", device="cpu")
    assert set(sidecar.ids()) == {"1", "2", "3"}
    np.testing.assert_allclose(sidecar.vectors(["3"]), encoder.encode_items([CATALOG[2]]), atol=1e-6)
    records = ItemRecords.open_existing(tmp_path / "sidecar")
    assert records is not None and set(records.ids()) == {"1", "2", "3"}

    # a hybrid search over the shop's index and the sidecar
    searcher = HybridSearcher(cluster, index_name, encoder, sidecar)
    try:
        result = searcher.search("hiking boot", size=3)
    finally:
        searcher.close()
    assert result[0].id == "2" and result[0].term is not None and result[0].vector is not None
    assert result[0].source["sku"] == "HB-2" and "embedding" not in result[0].source


def test_an_opensearch_index_without_index_knn_gets_the_sidecar_only_and_says_so_once(os_backend, index_name,
                                                                                      tmp_path):
    before = create_shop_index(os_backend, index_name, knn=False)
    write_catalog(tmp_path / "catalog.jsonl")

    report = run(os_backend, index_name, tmp_path)

    assert report.cluster_writes == "nothing"
    knn_notes = [note for note in report.notes if "index.knn" in note]
    assert len(knn_notes) == 1 and "sidecar only" in knn_notes[0]
    assert stored(os_backend, index_name) == before  # not even a version moved
    assert mapping(os_backend, index_name)["properties"] == SHOP_PROPERTIES
    assert (report.written, report.rejected) == (3, 1)
    assert [r["reason"] for r in rejects(tmp_path)] == [NOT_IN_INDEX]
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == {"1", "2", "3"}


def test_no_embedding_field_writes_nothing_to_a_shop_index(cluster, index_name, tmp_path):
    before = create_shop_index(cluster, index_name)
    write_catalog(tmp_path / "catalog.jsonl")

    report = run(cluster, index_name, tmp_path, embed_in_cluster=False)

    assert report.cluster_writes == "nothing" and report.written == 3
    assert stored(cluster, index_name) == before
    assert mapping(cluster, index_name)["properties"] == SHOP_PROPERTIES
    assert set(FaissIndex.load(tmp_path / "sidecar", device="cpu").ids()) == {"1", "2", "3"}


@pytest.mark.parametrize(("vector_mapping", "message"), [
    ({"type": "float"}, "already mapped as 'float'"),
    ({"properties": {"x": {"type": "float"}}}, "already mapped as 'object'"),
])
def test_a_vector_field_mapped_otherwise_is_refused_before_anything_is_written(cluster, index_name, tmp_path,
                                                                               vector_mapping, message):
    before = create_shop_index(cluster, index_name, properties={**SHOP_PROPERTIES, "embedding": vector_mapping})
    write_catalog(tmp_path / "catalog.jsonl")

    with pytest.raises(UsageError, match=message):
        run(cluster, index_name, tmp_path)

    assert stored(cluster, index_name) == before
    assert not (tmp_path / "sidecar").exists() and not (tmp_path / "rejects.jsonl").exists()


def test_vectors_of_another_dimension_are_refused_before_anything_is_written(cluster, index_name, tmp_path):
    other = dict(cluster._vector_mapping(IndexSpec(index_name, dims=DIM * 2)))
    before = create_shop_index(cluster, index_name, properties={**SHOP_PROPERTIES, "embedding": other})
    write_catalog(tmp_path / "catalog.jsonl")

    with pytest.raises(UsageError, match=f"vectors of {DIM * 2} dimensions and the encoder makes {DIM}"):
        run(cluster, index_name, tmp_path)

    assert stored(cluster, index_name) == before and not (tmp_path / "sidecar").exists()


def test_a_catalog_field_mapped_incompatibly_is_refused_in_replace_mode_only(cluster, index_name, tmp_path):
    before = create_shop_index(cluster, index_name, properties={**SHOP_PROPERTIES, "price": {"type": "date"}})
    write_catalog(tmp_path / "catalog.jsonl")

    with pytest.raises(UsageError, match="'price' is mapped as 'date'"):
        run(cluster, index_name, tmp_path, replace_documents=True)
    assert stored(cluster, index_name) == before and not (tmp_path / "sidecar").exists()

    assert run(cluster, index_name, tmp_path).written == 3  # adding the vector alone writes no price


def test_replace_documents_replaces_and_creates_documents(cluster, index_name, tmp_path):
    create_shop_index(cluster, index_name)
    write_catalog(tmp_path / "catalog.jsonl")

    report = run(cluster, index_name, tmp_path, replace_documents=True)

    assert (report.written, report.rejected, report.exit_code, report.cluster_writes) == (4, 0, EXIT_OK, "documents")
    after = stored(cluster, index_name)
    assert set(after) == {*SHOP_DOCS, "new-1"}
    replaced = {k: v for k, v in after["1"]["source"].items() if k != "embedding"}
    assert replaced == CATALOG[0]  # the stock, sku, ... are gone: the row replaced the document
    assert after["4"]["source"] == SHOP_DOCS["4"]
    assert mapping(cluster, index_name)["properties"]["embedding"]["type"] == VECTOR_TYPES[cluster.flavor]


def test_the_cli_keeps_the_shops_documents_on_delete_and_verify_repair(cluster, index_name, tmp_path):
    create_shop_index(cluster, index_name)
    catalog = write_catalog(tmp_path / "catalog.jsonl", CATALOG[:3])
    result = run_cli(cluster.url, tmp_path, "ingest", str(catalog), "--index", index_name, "--model", MODEL)
    assert result.exit_code == 0, result.output
    assert "note: " in result.output and "_source" in result.output
    before = stored(cluster, index_name)

    deletions = tmp_path / "delete.txt"
    deletions.write_text("1\n")
    result = run_cli(cluster.url, tmp_path, "ingest", "--delete", str(deletions), "--index", index_name,
                     "--model", MODEL, "--quiet")
    assert result.exit_code == 0, result.output
    assert stored(cluster, index_name) == before  # the shop's document 1 stays
    sidecar_dir = tmp_path / "data" / "sidecar" / index_name
    assert set(FaissIndex.load(sidecar_dir, device="cpu").ids()) == {"2", "3"}

    # the shop's documents the sidecar lacks (1 and 4) are re-encoded into the sidecar, not written back
    repaired = verify(cluster, index_name, sidecar_dir, repair=True, encoder=HashingEncoder(DIM))
    assert repaired.added == 2 and repaired.repaired
    assert stored(cluster, index_name) == before
    assert set(FaissIndex.load(sidecar_dir, device="cpu").ids()) == set(SHOP_DOCS)

    assert "--replace-documents" in run_cli(cluster.url, tmp_path, "ingest", "--help").output


def test_an_alias_is_resolved_to_its_write_index(cluster, index_name, tmp_path):
    concrete = f"{index_name}-v1"
    before = create_shop_index(cluster, concrete)
    cluster.client.indices.update_aliases(body={"actions": [{"add": {"index": concrete, "alias": index_name}}]})
    write_catalog(tmp_path / "catalog.jsonl")
    try:
        report = run(cluster, index_name, tmp_path)
        assert (report.written, report.cluster_writes) == (3, "vectors")
        assert mapping(cluster, concrete)["properties"]["embedding"]["type"] == VECTOR_TYPES[cluster.flavor]
        after = stored(cluster, concrete)
        assert {k: {f: v for f, v in d["source"].items() if f != "embedding"} for k, d in after.items()} == {
            k: d["source"] for k, d in before.items()}
    finally:
        cluster.delete_index(concrete)


def test_an_index_dsr_created_carries_its_marker_and_an_older_one_is_recognised(cluster, index_name, tmp_path):
    cluster.ensure_index(IndexSpec(index_name, dims=DIM))
    marker = mapping(cluster, index_name)["_meta"]["dsr"]
    assert marker == {"created_by": "dsr", "vector_field": "embedding", "dims": DIM}
    info = cluster.index_info(index_name)
    assert info is not None and info.created_by_dsr and info.owned_by_dsr

    older = f"{index_name}-old"  # what a dsr before the marker created: its mapping, no _meta
    body = dict(mapping(cluster, index_name))
    body.pop("_meta")
    cluster.client.indices.create(index=older, body={"settings": cluster._index_settings(IndexSpec(older, DIM)),
                                                     "mappings": body})
    try:
        info = cluster.index_info(older)
        assert info is not None and info.recognised_as_dsr and not info.created_by_dsr
        write_catalog(tmp_path / "catalog.jsonl")
        report = run(cluster, older, tmp_path)
        assert (report.written, report.cluster_writes) == (4, "documents")
    finally:
        cluster.delete_index(older)
