"""Latency and throughput of `dsr serve` against direct BM25 on the cluster, in the same run.

On a synthetic catalog (`dsr.logs.synthetic.make_world`, 100k items by default) indexed in
Elasticsearch and/or OpenSearch, with the item vectors in a FAISS sidecar, four pipelines answer the
same queries, interleaved query by query so drift hits them all alike:

* `direct_bm25`   - the `multi_match` query posted straight to the cluster (the baseline);
* `proxy_bm25`    - the same body posted to `dsr serve` (passed through untouched);
* `hybrid`        - `ext.dsr`: term top-100 + sidecar top-100, RRF, no re-rank;
* `hybrid_rerank` - the same plus the Siamese ranker over the top 100; the ranker reads sidecar
                    neighbours' fields from the item records `dsr ingest` keeps beside the vectors,
                    and only the page returned is fetched from the cluster;
* `hybrid_rerank_mget` - the same search on a second `dsr serve` without item records: neighbours'
                    sources are fetched with `mget` while the term search runs (the A/B for the records).

`dsr serve` runs in a child process (as in production), built from the saved sidecar and ranker.
Latency is measured one request at a time (p50/p99); QPS with `--concurrency` clients in parallel.
The per-stage breakdown is the p50 of the stage timings the server reports in `ext.dsr.timings_ms`.
Targets: passthrough overhead <= 2 ms p50; hybrid + re-rank p50 <= 25 ms and <= 3x direct.

    .venv/bin/python bench/serve_latency.py            # 100k items, both engines
    .venv/bin/python bench/serve_latency.py --quick    # 20k items, fewer requests (< 5 minutes)

Engines: $DSR_TEST_ES_URL / $DSR_TEST_OS_URL when set, else local nodes are started and stopped.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from common import log
from dsr.engines import engine_urls, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PIPELINES = ("direct_bm25", "proxy_bm25", "hybrid", "hybrid_rerank", "hybrid_rerank_mget")


# ----------------------------------------------------------------------------------------- child server

def serve_child(spec: dict[str, Any]) -> None:
    """Run `dsr serve` for the benchmark: the real app, built from the saved sidecar and ranker."""
    import torch
    import uvicorn

    torch.set_num_threads(spec["torch_threads"])
    from dsr.backends import connect
    from dsr.reranker.siamese import SiameseRanker
    from dsr.search.hybrid import HybridSearcher
    from dsr.server import ServeSettings, create_app
    from dsr.server.components import load_query_encoder
    from dsr.settings import ConnectionSettings
    from dsr.sidecar.faiss_index import FaissIndex
    from dsr.sidecar.items import ItemRecords

    conn = ConnectionSettings(spec["engine_url"])
    encoder = load_query_encoder(spec["model"])
    searcher = HybridSearcher(connect(conn), spec["index"], encoder,
                              FaissIndex.load(Path(spec["sidecar"]), device="cpu"),
                              SiameseRanker.load(spec["ranker"]),
                              item_records=ItemRecords.open_existing(Path(spec["sidecar"]))
                              if spec["item_records"] else None)
    app = create_app(ServeSettings(conn, index=spec["index"]), searcher=searcher)
    uvicorn.run(app, host="127.0.0.1", port=spec["port"], access_log=False, log_level="warning",
                server_header=False, date_header=False)


# ------------------------------------------------------------------------------------------ set-up

def build_models(world: Any, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The query encoder, item vectors in a FAISS sidecar, and a ranker directory.

    Without --model / --ranker, freshly initialised DSR two-tower and Siamese models are saved and
    served: untrained weights cost exactly what trained ones do.
    """
    import torch

    torch.set_num_threads(2)
    from dsr.reranker.features import FeatureConfig, FeatureExtractor
    from dsr.reranker.siamese import SiameseRanker
    from dsr.reranker.tower import RankerTower, TowerConfig
    from dsr.server.components import load_query_encoder
    from dsr.sidecar.faiss_index import FaissIndex
    from dsr.sidecar.items import ItemRecords

    model = args.model
    if model is None:
        from dsr.encoders.model import TwoTowerModel

        model = str(TwoTowerModel.build(world.catalog[:20_000], device="cpu").save(workdir / "two-tower"))
    encoder = load_query_encoder(model)
    t0 = time.perf_counter()
    vectors = np.concatenate([encoder.encode_items(world.catalog[i:i + 4096])
                              for i in range(0, len(world.catalog), 4096)])
    sidecar = FaissIndex(encoder.dim, kind=args.sidecar_kind, device="cpu")
    sidecar.upsert([r["id"] for r in world.catalog], vectors)
    sidecar.save(workdir / "sidecar")
    records = ItemRecords.open_for_every_scalar(workdir / "sidecar")  # as `dsr ingest` writes them
    records.upsert(world.catalog)
    records.close()
    log(f"encoded and indexed {len(vectors)} item vectors ({sidecar.kind}) in "
        f"{time.perf_counter() - t0:.1f}s")
    if args.ranker:
        ranker_dir = args.ranker
    else:
        features = FeatureConfig()
        ranker = SiameseRanker(FeatureExtractor(features), RankerTower(TowerConfig(n_numeric=len(features.numeric))))
        ranker_dir = str(ranker.save(workdir / "ranker"))
    return {"sidecar": str(workdir / "sidecar"), "ranker": ranker_dir, "model": model, "dim": encoder.dim,
            "sidecar_kind": sidecar.kind}


def index_catalog(engine_url: str, index: str, catalog: list[dict[str, Any]]) -> float:
    from dsr.backends import connect
    from dsr.backends.base import IndexSpec
    from dsr.settings import ConnectionSettings

    backend = connect(ConnectionSettings(engine_url))
    t0 = time.perf_counter()
    backend.ensure_index(IndexSpec(index))
    for i in range(0, len(catalog), 5000):
        result = backend.bulk_upsert(index, catalog[i:i + 5000])
        if not result.ok:
            raise SystemExit(f"indexing failed: {result.failed[:3]}")
    backend.refresh(index)
    n = backend.count(index)
    backend.close()
    if n != len(catalog):
        raise SystemExit(f"index holds {n} documents, expected {len(catalog)}")
    return time.perf_counter() - t0


def start_child(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-child", json.dumps(spec)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dsr serve exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{spec['port']}/_cluster/health", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("dsr serve did not start")


# ---------------------------------------------------------------------------------------- measuring

def requests_for(query: str, engine_url: str, proxy_url: str, index: str,
                 mget_url: str) -> dict[str, tuple[str, bytes]]:
    from dsr.backends.cluster import term_query

    bm25 = json.dumps({"size": 10, "query": term_query(query, None, None)}).encode()
    ext = {"text": query, "k": 100, "term_k": 100, "rerank_top": 100}
    hybrid = json.dumps({"size": 10, "ext": {"dsr": {**ext, "rerank": False}}}).encode()
    rerank = json.dumps({"size": 10, "ext": {"dsr": {**ext, "rerank": True}}}).encode()
    return {
        "direct_bm25": (f"{engine_url}/{index}/_search", bm25),
        "proxy_bm25": (f"{proxy_url}/{index}/_search", bm25),
        "hybrid": (f"{proxy_url}/{index}/_search", hybrid),
        "hybrid_rerank": (f"{proxy_url}/{index}/_search", rerank),
        "hybrid_rerank_mget": (f"{mget_url}/{index}/_search", rerank),
    }


HEADERS = {"content-type": "application/json"}


def one(client: httpx.Client, url: str, body: bytes) -> tuple[float, dict[str, Any] | None]:
    t0 = time.perf_counter()
    r = client.post(url, content=body, headers=HEADERS)
    ms = (time.perf_counter() - t0) * 1000.0
    if r.status_code != 200:
        raise SystemExit(f"{url} answered {r.status_code}: {r.text[:300]}")
    timings = None
    if b'"ext"' in r.content[-2000:]:
        timings = r.json().get("ext", {}).get("dsr", {}).get("timings_ms")
    return ms, timings


def measure(queries: list[str], engine_url: str, proxy_url: str, mget_url: str, index: str, n: int, warmup: int,
            concurrency: int, qps_requests: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {p: [] for p in PIPELINES}
    stages: dict[str, list[dict[str, float]]] = {"hybrid_rerank": [], "hybrid_rerank_mget": []}
    with httpx.Client(timeout=60) as client:
        for i in range(warmup + n):
            reqs = requests_for(queries[i % len(queries)], engine_url, proxy_url, index, mget_url)
            turn = i % len(PIPELINES)
            order = PIPELINES[turn:] + PIPELINES[:turn]  # rotate who goes first
            for p in order:
                ms, timings = one(client, *reqs[p])
                if i >= warmup:
                    lat[p].append(ms)
                    if p in stages and timings:
                        stages[p].append(timings)
    out: dict[str, Any] = {}
    for p in PIPELINES:
        a = np.array(lat[p])
        out[p] = {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
                  "mean_ms": round(float(a.mean()), 3), "n": len(a),
                  "qps": round(throughput(p, queries, (engine_url, proxy_url, index, mget_url), concurrency,
                                                qps_requests), 1)}
    for p, suffix in (("hybrid_rerank", ""), ("hybrid_rerank_mget", "_mget")):
        out[f"stages{suffix}_p50_ms"] = {k: round(float(np.median([s.get(k, 0.0) for s in stages[p]])), 3)
                                         for k in sorted({k for s in stages[p] for k in s})}
    d, pr, h = out["direct_bm25"]["p50_ms"], out["proxy_bm25"]["p50_ms"], out["hybrid_rerank"]["p50_ms"]
    out["ratios"] = {
        "proxy_overhead_p50_ms": round(pr - d, 3),
        "hybrid_rerank_over_direct_p50": round(h / d, 2),
        "hybrid_over_direct_p50": round(out["hybrid"]["p50_ms"] / d, 2),
        "hybrid_rerank_mget_over_direct_p50": round(out["hybrid_rerank_mget"]["p50_ms"] / d, 2),
        "mget_over_records_p50": round(out["hybrid_rerank_mget"]["p50_ms"] / h, 2),
    }
    out["targets_met"] = {
        "proxy_overhead_le_2ms": pr - d <= 2.0,
        "hybrid_rerank_p50_le_25ms": h <= 25.0,
        "hybrid_rerank_le_3x_direct": h <= 3 * d,
    }
    return out


def throughput(pipeline: str, queries: list[str], where: tuple[str, str, str, str], concurrency: int,
               total: int) -> float:
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> int:
        done = 0
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return done
                one(client, *requests_for(queries[i % len(queries)], *where)[pipeline])
                done += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(lambda _: worker(), range(concurrency)))
    return done / (time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- main

def serve_bench_arguments(parser: argparse.ArgumentParser, *, concurrency: int) -> None:
    """The options of a benchmark of searches through `dsr serve` on the synthetic catalog."""
    parser.add_argument("--quick", action="store_true", help="20k items and fewer requests (< 5 minutes)")
    parser.add_argument("--items", type=int, default=None, help="catalog size (default 100000; quick 20000)")
    parser.add_argument("--requests", type=int, default=None, help="measured requests per pipeline")
    parser.add_argument("--engines", default="elasticsearch,opensearch")
    parser.add_argument("--model", default=None,
                        help="query encoder as `dsr ingest --model` takes it: a model dir, minilm, hashing[:DIM] "
                             "(default: a freshly initialised DSR two-tower model)")
    parser.add_argument("--ranker", default=None, help="Siamese ranker dir (default: untrained, same cost)")
    parser.add_argument("--sidecar-kind", default="auto", help="FAISS index kind (auto, flat, hnsw, ivfpq)")
    parser.add_argument("--concurrency", type=int, default=concurrency)
    parser.add_argument("--torch-threads", type=int, default=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    serve_bench_arguments(parser, concurrency=4)
    parser.add_argument("--serve-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return
    n_items = args.items or (20_000 if args.quick else 100_000)
    n_req = args.requests or (150 if args.quick else 500)
    qps_requests = 100 if args.quick else 400
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    from dsr.logs.synthetic import make_world

    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    world = make_world(n_items=n_items, n_queries=300, seed=7)
    queries = [q.text for q in world.queries]
    log(f"synthetic world: {len(world.catalog)} items, {len(queries)} queries ({time.perf_counter() - t0:.1f}s)")
    results: dict[str, Any] = {}
    with engine_urls(engines, log=log) as running, tempfile.TemporaryDirectory(prefix="dsr-bench-") as tmp:
        models = build_models(world, Path(tmp), args)
        for name, url in running.urls.items():
            index = f"dsr-bench-{uuid.uuid4().hex[:8]}"
            secs = index_catalog(url, index, world.catalog)
            log(f"{name}: indexed {n_items} items in {secs:.1f}s")
            ports = free_port(), free_port()
            spec = {"engine_url": url, "index": index, "model": models["model"],
                    "sidecar": models["sidecar"], "ranker": models["ranker"], "torch_threads": args.torch_threads}
            children = [start_child({**spec, "port": port, "item_records": records})
                        for port, records in zip(ports, (True, False), strict=True)]
            try:
                results[name] = measure(queries, url, f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}",
                                        index, n_req, warmup=30, concurrency=args.concurrency,
                                        qps_requests=qps_requests)
                results[name]["index_seconds"] = round(secs, 1)
                log(f"{name}: " + json.dumps({p: results[name][p] for p in PIPELINES}))
                log(f"{name}: stages p50 ms {results[name]['stages_p50_ms']}; without records "
                    f"{results[name]['stages_mget_p50_ms']}; ratios {results[name]['ratios']}")
            finally:
                for child in children:
                    child.terminate()
                    child.wait(timeout=30)
                httpx.delete(f"{url}/{index}", timeout=60)
    summary = {"bench": "serve_latency", "items": n_items, "requests_per_pipeline": n_req,
               "concurrency_for_qps": args.concurrency, "encoder": args.model or "dsr two-tower (untrained weights)",
               "ranker": args.ranker or "siamese (untrained weights)", "sidecar_kind": models["sidecar_kind"],
               "cpu_count": os.cpu_count(),  # the machine is shared: a high load average skews every figure
               "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
               **results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
