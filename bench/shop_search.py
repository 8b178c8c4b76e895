"""A shop's own search request answered hybrid by `dsr serve` against the same request on the cluster.

The request is the one a shop's search page sends, unchanged (no `ext.dsr`): a `multi_match` of the
shopper's text on title and description, a price range filter, three `terms` facets (brand,
category, colour), a highlight of the title, 24 hits. On the synthetic catalog of
bench/serve_latency.py (the same world, models, sidecar and index), in Elasticsearch and/or
OpenSearch, three pipelines answer the same queries, interleaved query by query:

* `direct_bm25`   - the request posted straight to the cluster (the baseline);
* `hybrid`        - the request posted to `dsr serve --config` whose entry answers the index hybrid
                    (`rerank = false`): the shop's query for the term top 100, the sidecar's top 100
                    filtered by the cluster with the price range, RRF, then the final pass in which
                    the cluster computes the facets, highlight and page over the candidates;
* `hybrid_rerank` - the same on a second `dsr serve` whose entry re-ranks the top 100 (Siamese ranker).

`dsr serve` runs as the real command in child processes. Latency is measured one request at a time
(p50/p99), QPS with `--concurrency` clients in parallel. The stage breakdown is the p50 of
`profile.dsr.timings_ms` over separate requests with `"profile": true` (the cluster then profiles
the final pass too, so its `final_pass` figure there is an upper bound).
Target: hybrid (with and without re-rank) p50 <= 3x direct BM25 p50.

    .venv/bin/python bench/shop_search.py            # 100k items, both engines
    .venv/bin/python bench/shop_search.py --quick    # 20k items, fewer requests

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
from serve_latency import HEADERS, build_models, index_catalog, serve_bench_arguments

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PIPELINES = ("direct_bm25", "hybrid", "hybrid_rerank")
DEPTH = 100  # term_k, k and rerank_top of the served entry
PRICE_RANGE = {"gte": 15, "lte": 400}
COLOUR_FIELD = "attributes.color.keyword"  # dynamically mapped: text with a keyword sub-field


def shop_body(text: str, *, profile: bool = False) -> bytes:
    """The shop's search request for `text`: facets, a price filter, a title highlight, 24 hits."""
    body: dict[str, Any] = {
        "size": 24,
        "query": {"bool": {"must": [{"multi_match": {"query": text, "fields": ["title^2", "description"]}}],
                           "filter": [{"range": {"price": PRICE_RANGE}}]}},
        "aggs": {"brand": {"terms": {"field": "brand", "size": 20}},
                 "category": {"terms": {"field": "category", "size": 20}},
                 "colour": {"terms": {"field": COLOUR_FIELD, "size": 20}}},
        "highlight": {"fields": {"title": {}}},
    }
    if profile:
        body["profile"] = True
    return json.dumps(body).encode()


# ------------------------------------------------------------------------------------------ servers

def serve_config(directory: Path, index: str, models: dict[str, Any], *, rerank: bool) -> Path:
    """A serve configuration that answers `index` hybrid, with the bench's models and sidecar."""
    path = directory / f"serve-{'rerank' if rerank else 'fused'}.toml"
    values = {"name": index, "hybrid": True, "model": models["model"], "ranker": models["ranker"],
              "sidecar": models["sidecar"], "k": DEPTH, "term_k": DEPTH, "rerank": rerank, "rerank_top": DEPTH}
    lines = ["[[index]]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_serve(engine_url: str, config: Path, data_dir: Path, port: int, torch_threads: int
                ) -> subprocess.Popen[bytes]:
    """`dsr serve --config` in a child process, once it answers."""
    dsr = Path(sys.executable).parent / "dsr"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch_threads), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(dsr), "--engine", engine_url, "--data-dir", str(data_dir), "serve",
                             "--config", str(config), "--port", str(port)], env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dsr serve exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_cluster/health", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("dsr serve did not start")


# ---------------------------------------------------------------------------------------- measuring

def post(client: httpx.Client, url: str, body: bytes, *, hybrid: bool) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = client.post(url, content=body, headers=HEADERS)
    ms = (time.perf_counter() - t0) * 1000.0
    if r.status_code != 200:
        raise SystemExit(f"{url} answered {r.status_code}: {r.text[:300]}")
    if hybrid and r.headers.get("x-dsr-path") != "hybrid":  # the figures would be the cluster's own
        raise SystemExit(f"{url} did not answer hybrid: {r.headers.get('x-dsr-reason')}")
    return ms, r


def measure(queries: list[str], urls: dict[str, str], n: int, warmup: int, concurrency: int,
            qps_requests: int, profiled: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {p: [] for p in PIPELINES}
    with httpx.Client(timeout=60) as client:
        for i in range(warmup + n):
            body = shop_body(queries[i % len(queries)])
            turn = i % len(PIPELINES)
            for p in PIPELINES[turn:] + PIPELINES[:turn]:  # rotate who goes first
                ms, _ = post(client, urls[p], body, hybrid=p != "direct_bm25")
                if i >= warmup:
                    lat[p].append(ms)
        stages = {p: stage_timings(client, urls[p], queries, profiled) for p in ("hybrid", "hybrid_rerank")}
    out: dict[str, Any] = {}
    for p in PIPELINES:
        a = np.array(lat[p])
        out[p] = {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
                  "mean_ms": round(float(a.mean()), 3), "n": len(a),
                  "qps": round(throughput(urls[p], p != "direct_bm25", queries, concurrency, qps_requests), 1)}
    for p, found in stages.items():
        out[f"stages_p50_ms_{p}"] = found
    d = out["direct_bm25"]["p50_ms"]
    out["ratios"] = {f"{p}_over_direct_p50": round(out[p]["p50_ms"] / d, 2) for p in ("hybrid", "hybrid_rerank")}
    out["ratios"].update({f"{p}_over_direct_qps": round(out[p]["qps"] / out["direct_bm25"]["qps"], 2)
                          for p in ("hybrid", "hybrid_rerank")})
    out["targets_met"] = {f"{p}_p50_le_3x_direct": out[p]["p50_ms"] <= 3 * d for p in ("hybrid", "hybrid_rerank")}
    return out


def stage_timings(client: httpx.Client, url: str, queries: list[str], n: int) -> dict[str, float]:
    """The p50 of each stage dsr reports in `profile.dsr.timings_ms`, and of the profiled request itself."""
    seen: list[dict[str, float]] = []
    total: list[float] = []
    for i in range(n):
        ms, r = post(client, url, shop_body(queries[i % len(queries)], profile=True), hybrid=True)
        seen.append(r.json()["profile"]["dsr"]["timings_ms"])
        total.append(ms)
    out = {k: round(float(np.median([s.get(k, 0.0) for s in seen])), 3) for k in sorted({k for s in seen for k in s})}
    out["request_with_profile"] = round(float(np.median(total)), 3)
    return out


def throughput(url: str, hybrid: bool, queries: list[str], concurrency: int, total: int) -> float:
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
                post(client, url, shop_body(queries[i % len(queries)]), hybrid=hybrid)
                done += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(lambda _: worker(), range(concurrency)))
    return done / (time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    serve_bench_arguments(parser, concurrency=8)
    args = parser.parse_args()
    n_items = args.items or (20_000 if args.quick else 100_000)
    n_req = args.requests or (100 if args.quick else 500)
    qps_requests = 100 if args.quick else 400
    profiled = 30 if args.quick else 100
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    from dsr.logs.synthetic import make_world

    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    world = make_world(n_items=n_items, n_queries=300, seed=7)
    queries = [q.text for q in world.queries]
    log(f"synthetic world: {len(world.catalog)} items, {len(queries)} queries ({time.perf_counter() - t0:.1f}s)")
    results: dict[str, Any] = {}
    with engine_urls(engines, log=log) as running, tempfile.TemporaryDirectory(prefix="dsr-bench-") as tmp:
        workdir = Path(tmp)
        models = build_models(world, workdir, args)
        for name, url in running.urls.items():
            index = f"dsr-bench-{uuid.uuid4().hex[:8]}"
            secs = index_catalog(url, index, world.catalog)
            log(f"{name}: indexed {n_items} items in {secs:.1f}s")
            ports = {"hybrid": free_port(), "hybrid_rerank": free_port()}
            children = [start_serve(url, serve_config(workdir, index, models, rerank=p == "hybrid_rerank"),
                                    workdir / "data", port, args.torch_threads) for p, port in ports.items()]
            try:
                urls = {"direct_bm25": f"{url}/{index}/_search",
                        **{p: f"http://127.0.0.1:{port}/{index}/_search" for p, port in ports.items()}}
                results[name] = measure(queries, urls, n_req, warmup=20, concurrency=args.concurrency,
                                        qps_requests=qps_requests, profiled=profiled)
                results[name]["index_seconds"] = round(secs, 1)
                log(f"{name}: " + json.dumps({p: results[name][p] for p in PIPELINES}))
                log(f"{name}: stages p50 ms {results[name]['stages_p50_ms_hybrid']} / re-rank "
                    f"{results[name]['stages_p50_ms_hybrid_rerank']}; ratios {results[name]['ratios']}")
            finally:
                for child in children:
                    child.terminate()
                    child.wait(timeout=30)
                httpx.delete(f"{url}/{index}", timeout=60)
    summary = {"bench": "shop_search", "items": n_items, "requests_per_pipeline": n_req,
               "concurrency_for_qps": args.concurrency, "depth": DEPTH,
               "encoder": args.model or "dsr two-tower (untrained weights)",
               "ranker": args.ranker or "siamese (untrained weights)", "sidecar_kind": models["sidecar_kind"],
               "target": "hybrid p50 <= 3x direct BM25 p50", "cpu_count": os.cpu_count(),
               "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
               **results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
