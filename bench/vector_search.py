"""Sidecar kNN (FAISS HNSW / IVF-PQ via `FaissIndex`) against exact search and the engines' own kNN.

Vectors: a seeded synthetic set shaped like item embeddings (L2-normalised points around 5,000
cluster centres in a 32-dimensional subspace plus isotropic noise), not pure noise, on which no
approximate index is meaningful. Queries are further draws from the same distribution. Ground truth
is exact inner-product search (FAISS flat), which is also the baseline whose speed is reported.

For each method: build time, batch-1 latency p50/p99 (one thread, as a serving process would use
per request) and QPS, batch-64 QPS (all threads), recall@10 against exact. HNSW is swept over
efSearch, IVF-PQ over nprobe, the engines (through dsr's own backend: Elasticsearch dense_vector
HNSW, OpenSearch knn_vector lucene HNSW) over num_candidates; the reported point of each is the
fastest one with recall@10 >= 0.95. The engines run single-node with a 512 MB heap, so they get
`--engine-n` vectors (default: min(n, 50k); 5k with --quick); the side-by-side ratio compares the sidecar built on the
*same* vectors and queries as the engine.

    .venv/bin/python bench/vector_search.py            # 1M vectors, dims 128 and 384
    .venv/bin/python bench/vector_search.py --quick    # 20k vectors, engines 5k (< 5 minutes)

Engines: $DSR_TEST_ES_URL / $DSR_TEST_OS_URL when set (or --no-engines), else local nodes are
started with `dsr.engines` and stopped. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

import faiss
import numpy as np

from common import log
from dsr.engines import engine_urls
from dsr.sidecar.faiss_index import FaissIndex

TARGET_RECALL = 0.95
K = 10


def make_vectors(n: int, n_queries: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(32, dim)).astype(np.float32)
    centres = rng.normal(size=(5_000, 32)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        for start in range(0, m, 100_000):
            size = min(100_000, m - start)
            latent = centres[rng.integers(0, len(centres), size)] + 0.8 * rng.normal(size=(size, 32))
            x = latent.astype(np.float32) @ basis + 1.0 * rng.normal(size=(size, dim)).astype(np.float32)
            out[start:start + size] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def exact(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    t = time.perf_counter()
    _, truth = index.search(q, K)
    batch_s = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    lat = []
    for row in q[:100]:
        t = time.perf_counter()
        index.search(row[None, :], K)
        lat.append(time.perf_counter() - t)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return truth, {"p50_ms": ms(np.median(lat)), "p99_ms": ms(np.percentile(lat, 99)),
                   "qps_batch1": round(1 / np.mean(lat), 1), "qps_batch64": round(len(q) / batch_s, 1)}


def ms(seconds: float) -> float:
    return round(float(seconds) * 1000, 3)


def recall(found: list[list[str]], truth: np.ndarray) -> float:
    hits = [len({str(t) for t in row_truth} & set(row)) / K for row, row_truth in zip(found, truth, strict=True)]
    return round(float(np.mean(hits)), 4)


def measure_index(index: FaissIndex, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    _, found = index.search(q, K)
    faiss.omp_set_num_threads(1)
    lat = []
    for row in q:
        t = time.perf_counter()
        index.search(row[None, :], K)
        lat.append(time.perf_counter() - t)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    t = time.perf_counter()
    for start in range(0, len(q), 64):
        index.search(q[start:start + 64], K)
    batch_s = time.perf_counter() - t
    return {"recall10": recall(found, truth), "p50_ms": ms(np.median(lat)), "p99_ms": ms(np.percentile(lat, 99)),
            "qps": round(1 / np.mean(lat), 1), "qps_batch64": round(len(q) / batch_s, 1)}


def pick(sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest batch-1 point at recall >= target, else the most accurate one (flagged)."""
    good = [p for p in sweep if p["recall10"] >= TARGET_RECALL]
    if good:
        return {**max(good, key=lambda p: p["qps"]), "meets_recall": True}
    return {**max(sweep, key=lambda p: p["recall10"]), "meets_recall": False}


def bench_sidecar(kind: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    ids = [str(i) for i in range(len(x))]
    nlist = max(16, int(np.sqrt(len(x))))  # IVF lists: sqrt(n) keeps training short on 2 cores
    index = FaissIndex(x.shape[1], kind=kind, device="cpu", nlist=nlist)
    t = time.perf_counter()
    for start in range(0, len(x), 50_000):
        index.upsert(ids[start:start + 50_000], x[start:start + 50_000])
    build_s = time.perf_counter() - t
    sweep = []
    if kind == "hnsw":
        for ef in (16, 32, 64, 128, 256):
            index.config = index.config.__class__(**{**index.config.to_config(), "ef_search": ef})
            sweep.append({"ef_search": ef, **measure_index(index, q, truth)})
    else:
        for nprobe in (4, 8, 16, 32, 64, 128):
            index.config = index.config.__class__(**{**index.config.to_config(), "nprobe": nprobe})
            sweep.append({"nprobe": nprobe, **measure_index(index, q, truth)})
    log(f"  {kind}: build {build_s:.1f}s; " + "; ".join(
        f"{next(iter(p.values()))}: r={p['recall10']} p50={p['p50_ms']}ms" for p in sweep))
    return {"build_s": round(build_s, 2), **pick(sweep), "sweep": sweep}


def bench_engine(url: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from dsr.backends import IndexSpec, connect
    from dsr.settings import ConnectionSettings

    backend = connect(ConnectionSettings(engine_url=url))
    name = f"dsr-bench-knn-{uuid.uuid4().hex[:8]}"
    try:
        backend.ensure_index(IndexSpec(name, dims=x.shape[1]))
        t = time.perf_counter()
        for start in range(0, len(x), 2_000):
            docs = [{"id": str(i), "embedding": x[i].tolist()} for i in range(start, min(len(x), start + 2_000))]
            result = backend.bulk_upsert(name, docs)
            if result.failed:
                raise RuntimeError(f"{len(result.failed)} documents refused: {result.failed[0]}")
        backend.refresh(name)
        write_s = time.perf_counter() - t
        client = getattr(backend, "client", None)
        if client is not None:  # one segment: the engine's best case for kNN (bench only)
            if hasattr(client, "options"):  # elasticsearch-py 8
                client.options(request_timeout=1_800).indices.forcemerge(index=name, max_num_segments=1)
            else:  # opensearch-py
                client.indices.forcemerge(index=name, max_num_segments=1, request_timeout=1_800)
            backend.refresh(name)
        build_s = time.perf_counter() - t
        assert backend.count(name) == len(x)
        sweep = []
        for candidates in (100, 200, 400, 800):  # dsr's backend asks for at least 10 * k candidates
            found, lat = [], []
            for row in q:
                t = time.perf_counter()
                hits = backend.knn_search(name, row, k=K, num_candidates=candidates)
                lat.append(time.perf_counter() - t)
                found.append([h.id for h in hits])
            sweep.append({"num_candidates": candidates, "recall10": recall(found, truth),
                          "p50_ms": ms(np.median(lat)), "p99_ms": ms(np.percentile(lat, 99)),
                          "qps": round(1 / np.mean(lat), 1)})
        log(f"  {backend.flavor}: write {write_s:.1f}s build {build_s:.1f}s; " + "; ".join(
            f"{p['num_candidates']}: r={p['recall10']} p50={p['p50_ms']}ms" for p in sweep))
        return {"n": len(x), "write_s": round(write_s, 2), "build_s": round(build_s, 2), **pick(sweep),
                "sweep": sweep}
    except Exception as e:  # report what did not fit rather than dying
        log(f"  engine at {url} failed: {e}")
        return {"n": len(x), "error": str(e)[:300]}
    finally:
        try:
            backend.delete_index(name)
        finally:
            backend.close()


def ratio(sidecar: dict[str, Any], engine: dict[str, Any]) -> float | None:
    if not sidecar.get("meets_recall") or not engine.get("meets_recall"):
        return None
    return round(sidecar["qps"] / engine["qps"], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k vectors, engines 5k, fewer queries (< 5 minutes)")
    parser.add_argument("--n", type=int, default=None, help="vectors in the sidecar (default 1M, quick 30k)")
    parser.add_argument("--engine-n", type=int, default=None, help="vectors in the engines (default min(n, 50k))")
    parser.add_argument("--dims", default="128,384")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--engines", default="elasticsearch,opensearch")
    parser.add_argument("--no-engines", action="store_true")
    parser.add_argument("--kinds", default="hnsw,ivfpq")
    args = parser.parse_args()
    n = args.n or (20_000 if args.quick else 1_000_000)
    engine_n = min(n, args.engine_n or (5_000 if args.quick else 50_000))
    n_queries = args.queries or (150 if args.quick else 500)
    dims = [int(d) for d in args.dims.split(",")]
    kinds = args.kinds.split(",")
    engines = [] if args.no_engines else args.engines.split(",")
    running = engine_urls(engines, log=log)
    urls = running.urls
    out: dict[str, Any] = {"n": n, "engine_n": engine_n, "queries": n_queries, "k": K, "dims": dims,
                           "cores": os.cpu_count(), "target_recall10": TARGET_RECALL, "results": {}}
    try:
        for dim in dims:
            log(f"dim {dim}: {n} vectors ...")
            x, q = make_vectors(n, n_queries, dim)
            truth, flat = exact(x, q)
            res: dict[str, Any] = {"exact_flat": flat}
            for kind in kinds:
                res[kind] = bench_sidecar(kind, x, q, truth)
            if engines:
                xe = x[:engine_n]
                truth_e, flat_e = exact(xe, q)
                side = {"n": engine_n, "exact_flat": flat_e, "hnsw": bench_sidecar("hnsw", xe, q, truth_e)}
                if engine_n == n:
                    side["hnsw"] = res.get("hnsw", side["hnsw"])
                res["same_n_as_engines"] = side
                for name in engines:
                    log(f"  {name} kNN on {engine_n} vectors ...")
                    res[f"{name}_knn"] = bench_engine(urls[name], xe, q, truth_e)
                    res[f"qps_ratio_vs_{name}_at_recall95"] = ratio(side["hnsw"], res[f"{name}_knn"])
            out["results"][str(dim)] = res
    finally:
        running.stop()
    first = out["results"][str(dims[0])]
    summary = {key: first[key] for key in first if key.startswith("qps_ratio")}
    for name in ("hnsw", "ivfpq"):
        if name in first:
            summary[name] = {k: first[name][k] for k in ("p50_ms", "qps", "qps_batch64", "recall10", "build_s")}
    print(json.dumps({**out, "summary_dim": dims[0], **summary}))


if __name__ == "__main__":
    main()
