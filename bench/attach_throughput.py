"""Attach throughput (items/s) of `dsr attach` on a shop's own index in Elasticsearch and OpenSearch,
where the time goes (reading the index page by page, encoding, sidecar writes), against `dsr ingest`
of the same items from a catalog file, measured in the same run.

The shop's index: N documents of the seeded synthetic catalog (`dsr.logs.synthetic.make_world`) in a
shop's own schema and mapping (title at `product.name`, brand at `manufacturer.name`, the category as
a list of breadcrumbs, price at `price.value`, and fields dsr does not read: sku, stock, tags, a date),
written with the engine's `_bulk` API over HTTP before anything is timed. Attach is the library call
(`dsr.ingest.attach.attach`) with `--field title=product.name --field brand=manufacturer.name`, into a
fresh data directory each time; it writes the sidecar only. Baseline: `dsr ingest` (`dsr.ingest.ingest`)
of the same items, as a jsonl catalog, into a fresh dsr index, without the embedding field in the
cluster (so that both write the vectors to the sidecar only; ingest also bulk-writes the documents),
and once with it (labelled `ingest_with_embedding`). Both use the same batch size.

Encoders: the hashing encoder (`hashing:384`, the model out of the picture) on N items, and the MiniLM
backbone (`minilm`) on a smaller index of `--minilm-items`, because encoding with MiniLM on a few CPU
cores is slow and would dominate every figure.

    .venv/bin/python bench/attach_throughput.py                      # N = 100k, MiniLM on 20k
    .venv/bin/python bench/attach_throughput.py --quick              # N = 10k, MiniLM on 2k
    .venv/bin/python bench/attach_throughput.py --encoders hashing   # hashing only

Engines: $DSR_TEST_ES_URL / $DSR_TEST_OS_URL when set, else local nodes are started and stopped.
The indexes it creates are named `dsr-bench-attach-*` and deleted at the end. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from common import log
from dsr.engines import engine_urls

PREFIX = "dsr-bench-attach-"
GIVEN_FIELDS = {"title": "product.name", "brand": "manufacturer.name"}  # as `--field` options would say it
SHOP_MAPPING: dict[str, Any] = {
    "properties": {
        "sku": {"type": "keyword"},
        "product": {"properties": {
            "name": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
            "description": {"type": "text"},
            "attributes": {"properties": {"color": {"type": "keyword"}, "material": {"type": "keyword"}}},
        }},
        "manufacturer": {"properties": {"name": {"type": "keyword"}, "country": {"type": "keyword"}}},
        "categories": {"type": "keyword"},
        "price": {"properties": {"value": {"type": "double"},
                                 "currency": {"type": "keyword"}}},
        "popularity": {"type": "float"},
        "ctr": {"type": "float"},
        "stock": {"type": "integer"},
        "tags": {"type": "keyword"},
        "updated_at": {"type": "date"},
    }
}


def shop_document(row: dict[str, Any], n: int) -> dict[str, Any]:
    """A catalog row in the shop's own schema (what attach reads; `catalog_item` is what ingest reads)."""
    attributes = row.get("attributes") or {}
    doc: dict[str, Any] = {
        "sku": f"SKU-{n:07d}",
        "product": {"name": row["title"], "description": row.get("description", ""), "attributes": attributes},
        "manufacturer": {"name": row.get("brand", ""), "country": ("DE", "FR", "US", "JP")[n % 4]},
        "categories": str(row.get("category", "")).split(" > "),
        "price": {"value": row.get("price"), "currency": "EUR"},
        "stock": n % 97,
        "tags": [v for v in attributes.values() if isinstance(v, str)],
        "updated_at": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
    }
    for key in ("popularity", "ctr"):
        if key in row:
            doc[key] = row[key]
    return doc


def catalog_item(row: dict[str, Any]) -> dict[str, Any]:
    """The item attach makes of `shop_document(row)`: the same fields, so both encode the same text."""
    keep = ("id", "title", "description", "brand", "category", "price", "popularity", "ctr")
    return {k: row[k] for k in keep if k in row}


def create_shop_index(url: str, name: str, rows: Sequence[dict[str, Any]], chunk: int = 5000) -> float:
    """Create the shop's index with its own mapping and bulk-write `rows` into it; returns the seconds."""
    t = time.perf_counter()
    with httpx.Client(base_url=url, timeout=300.0) as http:
        resp = http.put(f"/{name}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                          "mappings": SHOP_MAPPING})
        if resp.is_error:
            raise RuntimeError(f"could not create {name}: HTTP {resp.status_code} {resp.text[:500]}")
        for start in range(0, len(rows), chunk):
            lines: list[str] = []
            for n, row in enumerate(rows[start:start + chunk], start):
                lines.append(json.dumps({"index": {"_index": name, "_id": row["id"]}}))
                lines.append(json.dumps(shop_document(row, n)))
            resp = http.post("/_bulk", content="\n".join(lines) + "\n",
                             headers={"Content-Type": "application/x-ndjson"})
            resp.raise_for_status()
            body = resp.json()
            if body.get("errors"):
                first = next(i for i in body["items"] if i["index"].get("error"))
                raise RuntimeError(f"bulk write into {name} failed: {first}")
        http.post(f"/{name}/_refresh").raise_for_status()
        count = http.get(f"/{name}/_count").json()["count"]
    if count != len(rows):
        raise RuntimeError(f"{name} holds {count} documents, expected {len(rows)}")
    return time.perf_counter() - t


def delete_index(url: str, name: str) -> None:
    with httpx.Client(base_url=url, timeout=60.0) as http:
        resp = http.delete(f"/{name}")
        if resp.status_code not in (200, 404):
            log(f"could not delete {name}: HTTP {resp.status_code} {resp.text[:200]}")


def paging_only(backend: Any, index: str, batch: int) -> float:
    """items/s of reading the index alone, page by page, as attach reads it (point in time + search_after)."""
    t = time.perf_counter()
    n = sum(len(page.documents) for page in backend.iter_documents(index, batch=batch))
    return n / (time.perf_counter() - t)


def id_sweep_only(backend: Any, index: str) -> float:
    """Seconds of listing every id of the index, as attach does at the end to drop ids the index no longer holds."""
    t = time.perf_counter()
    for _ in backend.iter_ids(index):
        pass
    return time.perf_counter() - t


def run_attach(backend: Any, index: str, encoder: Any, work: Path, batch: int, expected: int,
               paging_items_per_s: float, sweep_seconds: float) -> tuple[dict[str, Any], list[str]]:
    """One attach into a fresh data directory: its items/s and where the time went, and its field map.

    The report times encoding and sidecar upserts; the paging and id-sweep shares are those of doing
    the same alone on the same index (`paging_only`, `id_sweep_only`, measured just before), and
    `share_rest` is what is left: field mapping, validation, checkpoints and the final sidecar snapshot.
    """
    from dsr.ingest.attach import AttachOptions, attach

    report = attach(backend=backend, index=index, encoder=encoder, sidecar_dir=work / "sidecar",
                    rejects_path=work / "attach" / "rejects.jsonl", checkpoint_path=work / "attach" / "checkpoint.json",
                    given=GIVEN_FIELDS, options=AttachOptions(batch_size=batch, progress=False))
    assert report.written == expected and report.rejected == 0, report.to_dict()
    total = report.seconds
    unaccounted = max(total - report.encode_seconds - report.sidecar_seconds, 0.0)
    paging = min(expected / paging_items_per_s, unaccounted)
    sweep = min(sweep_seconds, unaccounted - paging)
    rest = unaccounted - paging - sweep
    return {
        "items_per_s": round(report.items_per_second, 1),
        "seconds": round(total, 2),
        "share_read_paging": round(paging / total, 3),
        "share_encode": round(report.encode_seconds / total, 3),
        "share_sidecar": round(report.sidecar_seconds / total, 3),
        "share_id_sweep": round(sweep / total, 3),
        "share_rest": round(rest / total, 3),
    }, report.field_map


def run_ingest(backend: Any, catalog: Path, encoder: Any, work: Path, batch: int, embed: bool,
               expected: int) -> dict[str, Any]:
    from dsr.ingest import IngestOptions, ingest

    index = f"{PREFIX}ingest-{uuid.uuid4().hex[:8]}"
    try:
        report = ingest(catalog, backend=backend, index=index, encoder=encoder, sidecar_dir=work / "sidecar",
                        rejects_path=work / "rejects.jsonl", checkpoint_path=work / "checkpoint.json",
                        options=IngestOptions(batch_size=batch, embed_in_cluster=embed, progress=False))
    finally:
        backend.delete_index(index)
    assert report.written == expected, report.to_dict()
    total = report.seconds
    return {
        "items_per_s": round(report.items_per_second, 1),
        "seconds": round(total, 2),
        "share_encode": round(report.encode_seconds / total, 3),
        "share_cluster_write": round(report.cluster_seconds / total, 3),
        "share_sidecar": round(report.sidecar_seconds / total, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10k, MiniLM on 2k")
    parser.add_argument("--n", type=int, default=None, help="documents in the shop's index (default 100k)")
    parser.add_argument("--minilm-items", type=int, default=None,
                        help="documents for the MiniLM runs (default 20k, quick 2k): CPU encoding is slow")
    parser.add_argument("--encoders", default="hashing,minilm", help="comma-separated: hashing, minilm")
    parser.add_argument("--hashing-dim", type=int, default=384, help="hashing encoder dimension (MiniLM's: 384)")
    parser.add_argument("--batch-size", type=int, default=500, help="attach's page size and ingest's batch size")
    parser.add_argument("--engines", default="elasticsearch,opensearch")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from dsr.backends import connect
    from dsr.encoders.resolve import resolve_encoder
    from dsr.logs.synthetic import make_world
    from dsr.settings import ConnectionSettings

    wall = time.perf_counter()
    n = args.n or (10_000 if args.quick else 100_000)
    minilm_n = min(args.minilm_items or (2_000 if args.quick else 20_000), n)
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    unknown = set(encoders) - {"hashing", "minilm"}
    if unknown:
        parser.error(f"unknown encoder(s): {', '.join(sorted(unknown))}")
    sizes = {"hashing": n, "minilm": minilm_n}
    specs = {"hashing": f"hashing:{args.hashing_dim}", "minilm": "minilm"}
    rows = make_world(n_items=max(sizes[e] for e in encoders), n_queries=0, n_users=1).catalog
    engines = args.engines.split(",")
    running = engine_urls(engines, log=log)
    urls = running.urls
    out: dict[str, Any] = {
        "bench": "attach_throughput", "n": n, "encoders": encoders, "batch_size": args.batch_size,
        "items_per_encoder": {e: sizes[e] for e in encoders}, "cores": os.cpu_count(), "quick": args.quick,
        "note": (f"MiniLM runs use {minilm_n} items (CPU encoding is slow); ingest baseline without the "
                 "embedding field, as attach writes the sidecar only") if "minilm" in encoders else
                "ingest baseline without the embedding field, as attach writes the sidecar only",
        "split": ("attach shares: read_paging and id_sweep (each done alone on the same index just before), "
                  "encode, sidecar (upserts), rest (mapping, validation, checkpoints, final sidecar snapshot)"),
        "field_map": [], "results": {},
    }
    if "minilm" in encoders:
        log(f"MiniLM runs on {minilm_n} items, not {n}: encoding on {os.cpu_count()} CPU cores is slow")
    created: list[tuple[str, str]] = []
    loaded: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            catalogs: dict[int, Path] = {}
            for size in sorted({sizes[e] for e in encoders}):
                catalogs[size] = Path(tmp) / f"catalog-{size}.jsonl"
                catalogs[size].write_text("".join(json.dumps(catalog_item(r)) + "\n" for r in rows[:size]))
            for engine in engines:
                url = urls[engine]
                backend = connect(ConnectionSettings(engine_url=url))
                res: dict[str, Any] = {}
                try:
                    shops: dict[int, str] = {}
                    for size in sorted({sizes[e] for e in encoders}):
                        name = f"{PREFIX}shop-{size}-{uuid.uuid4().hex[:8]}"
                        created.append((url, name))
                        seconds = create_shop_index(url, name, rows[:size])
                        shops[size] = name
                        log(f"{engine}: shop index {name} with {size} documents written in {seconds:.1f}s (not timed)")
                    for enc_name in encoders:
                        size, shop = sizes[enc_name], shops[sizes[enc_name]]
                        if enc_name not in loaded:
                            loaded[enc_name] = resolve_encoder(specs[enc_name])
                            loaded[enc_name].encode_items([catalog_item(r) for r in rows[:8]])  # load outside timings
                        encoder = loaded[enc_name]
                        r: dict[str, Any] = {"items": size, "model": specs[enc_name], "dim": encoder.dim}
                        paging = paging_only(backend, shop, args.batch_size)
                        sweep = id_sweep_only(backend, shop)
                        r["paging_only_items_per_s"] = round(paging, 1)
                        r["id_sweep_only_seconds"] = round(sweep, 3)
                        r["attach"], out["field_map"] = run_attach(backend, shop, encoder, Path(tmp) / uuid.uuid4().hex,
                                                                   args.batch_size, size, paging, sweep)
                        log(f"{engine} {enc_name} attach: {r['attach']} (paging alone "
                            f"{r['paging_only_items_per_s']} items/s)")
                        r["ingest_no_embedding"] = run_ingest(backend, catalogs[size], encoder,
                                                              Path(tmp) / uuid.uuid4().hex, args.batch_size,
                                                              False, size)
                        log(f"{engine} {enc_name} ingest --no-embedding-field: {r['ingest_no_embedding']}")
                        r["ingest_with_embedding"] = run_ingest(backend, catalogs[size], encoder,
                                                                Path(tmp) / uuid.uuid4().hex, args.batch_size,
                                                                True, size)
                        log(f"{engine} {enc_name} ingest with embedding field: {r['ingest_with_embedding']}")
                        r["ratio_attach_vs_ingest_no_embedding"] = round(
                            r["attach"]["items_per_s"] / r["ingest_no_embedding"]["items_per_s"], 3)
                        r["ratio_attach_vs_ingest_with_embedding"] = round(
                            r["attach"]["items_per_s"] / r["ingest_with_embedding"]["items_per_s"], 3)
                        log(f"{engine} {enc_name}: attach/ingest = {r['ratio_attach_vs_ingest_no_embedding']} "
                            f"(vs ingest with embedding field: {r['ratio_attach_vs_ingest_with_embedding']})")
                        res[enc_name] = r
                finally:
                    backend.close()
                out["results"][engine] = res
    finally:
        for url, name in created:
            delete_index(url, name)
        running.stop()
    out["wall_s"] = round(time.perf_counter() - wall, 1)
    log(f"done in {out['wall_s']}s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
