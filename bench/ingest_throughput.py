"""Ingest throughput (items/s) of `dsr ingest` into Elasticsearch and OpenSearch, with and without
the embedding field in the cluster, and where the time goes (encoding vs cluster writes vs sidecar).

Catalog: the seeded synthetic catalog (`dsr.logs.synthetic.make_world`) written as jsonl. Encoder:
the MiniLM backbone by default (`--model hashing:384` to take the model out of the picture). Each
configuration runs the full pipeline (read, validate, encode, bulk write with retries, sidecar
journal, final snapshot) into a fresh index and sidecar. Baseline, measured in the same run: a plain
bulk write of the same documents (no validation, no encoding, no sidecar) through the same backend,
with and without precomputed vectors: the ceiling an ingest could reach on this cluster.

    .venv/bin/python bench/ingest_throughput.py            # 20k items
    .venv/bin/python bench/ingest_throughput.py --quick    # 500 items (< 5 minutes even with MiniLM on 2 busy cores)

Engines: $DSR_TEST_ES_URL / $DSR_TEST_OS_URL when set, else local nodes are started and stopped.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import log
from dsr.engines import engine_urls


def raw_bulk(backend: Any, docs: list[dict[str, Any]], vectors: Any | None) -> float:
    """items/s of a plain bulk write of `docs` (with precomputed `vectors` when given)."""
    from dsr.backends import IndexSpec

    name = f"dsr-bench-raw-{uuid.uuid4().hex[:8]}"
    backend.ensure_index(IndexSpec(name, dims=vectors.shape[1] if vectors is not None else None))
    try:
        payload = [{**d, "embedding": vectors[i].tolist()} for i, d in enumerate(docs)] if vectors is not None \
            else docs
        t = time.perf_counter()
        for start in range(0, len(payload), 256):
            result = backend.bulk_upsert(name, payload[start:start + 256])
            assert result.ok, result.failed[:1]
        backend.refresh(name)
        return len(docs) / (time.perf_counter() - t)
    finally:
        backend.delete_index(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--engines", default="elasticsearch,opensearch")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from dsr.backends import connect
    from dsr.encoders.resolve import resolve_encoder
    from dsr.ingest import IngestOptions, ingest
    from dsr.logs.synthetic import make_world
    from dsr.settings import ConnectionSettings

    n = args.n or (500 if args.quick else 20_000)
    catalog_rows = make_world(n_items=n, n_queries=0, n_users=1).catalog
    encoder = resolve_encoder(args.model)
    encoder.encode_items(catalog_rows[:8])  # load the model outside the timings
    engines = args.engines.split(",")
    running = engine_urls(engines, log=log)
    urls = running.urls
    out: dict[str, Any] = {"n": n, "model": args.model, "dim": encoder.dim, "batch_size": args.batch_size,
                           "cores": os.cpu_count(), "results": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            catalog = Path(tmp) / "catalog.jsonl"
            catalog.write_text("".join(json.dumps(r) + "\n" for r in catalog_rows))
            t = time.perf_counter()
            vectors = encoder.encode_items(catalog_rows)
            encode_only = n / (time.perf_counter() - t)
            out["encode_only_items_per_s"] = round(encode_only, 1)
            for name in engines:
                backend = connect(ConnectionSettings(engine_url=urls[name]))
                res: dict[str, Any] = {}
                try:
                    res["baseline_raw_bulk_items_per_s"] = round(raw_bulk(backend, catalog_rows, None), 1)
                    res["baseline_raw_bulk_with_vectors_items_per_s"] = round(
                        raw_bulk(backend, catalog_rows, vectors), 1)
                    for label, embed in (("with_embedding", True), ("without_embedding", False)):
                        index = f"dsr-bench-ingest-{uuid.uuid4().hex[:8]}"
                        work = Path(tmp) / index
                        try:
                            report = ingest(catalog, backend=backend, index=index, encoder=encoder,
                                            sidecar_dir=work / "sidecar", rejects_path=work / "rejects.jsonl",
                                            checkpoint_path=work / "checkpoint.json",
                                            options=IngestOptions(batch_size=args.batch_size, embed_in_cluster=embed,
                                                                  progress=False))
                        finally:
                            backend.delete_index(index)
                        assert report.written == n, report.to_dict()
                        total = report.seconds
                        res[label] = {
                            "items_per_s": round(report.items_per_second, 1),
                            "seconds": round(total, 2),
                            "share_encode": round(report.encode_seconds / total, 3),
                            "share_cluster_write": round(report.cluster_seconds / total, 3),
                            "share_sidecar": round(report.sidecar_seconds / total, 3),
                        }
                        log(f"{name} {label}: {res[label]}")
                    res["ratio_vs_raw_bulk_with_vectors"] = round(
                        res["with_embedding"]["items_per_s"] / res["baseline_raw_bulk_with_vectors_items_per_s"], 3)
                finally:
                    backend.close()
                out["results"][name] = res
    finally:
        running.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
