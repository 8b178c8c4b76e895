"""Retrieval quality and speed of DSR vs its baselines, measured in the same run.

Synthetic set (dsr.logs.synthetic): DSR towers trained on simulated click logs vs BM25 (the embedded
backend's term search): recall@100 on the no-term-overlap queries and NDCG@10 / recall@100 on all
queries. Target: DSR no-overlap recall@100 >= 3x BM25's; DSR NDCG@10 not below BM25's.

Real set (../shared/datasets/homedepot): towers with the frozen MiniLM backbone (trainable residual
heads, in-batch softmax, lr 3e-4) trained on judged pairs of the train split, vs the untuned MiniLM
and BM25, NDCG@10 and recall@100 on dev queries. For CPU time the catalog is a deterministic subset:
the judged items of the sampled train and dev queries plus random distractor products (all three systems
search the same subset); MiniLM vectors are cached on disk (.dsr/cache/bench).

NDCG@10 and recall@100 are `dsr eval`'s (dsr.eval.metrics: ranx, linear gain, log2 discount), and the
data is read with dsr.eval.loaders.

Speed: training throughput (triples/s) and query-tower latency (ms per query, batch 1) on this
machine's CPU (or GPU when present).

With --real-model DIR the real set is evaluated differently: the given `dsr train retrieval` model (e.g.
trained with --tune-backbone on the train judgments) on the whole catalog and every dev query.

Usage: python bench/retrieval_quality.py [--quick] [--skip-real] [--real-model DIR]
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from common import catalog_by_id, catalog_rows, grades, log, ranked_means
from dsr.backends.base import IndexSpec
from dsr.backends.embedded import EmbeddedBackend
from dsr.catalog import item_text
from dsr.encoders.model import TwoTowerModel
from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig, train_two_tower
from dsr.eval.loaders import load_homedepot
from dsr.logs.judged import judged_triples
from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.logs.triples import TripleConfig, build_triples

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- retrieval

def dense_runs(qv: np.ndarray, iv: np.ndarray, ids: list[str], k: int = 100) -> list[list[str]]:
    out = []
    for s in range(0, len(qv), 256):
        scores = torch.from_numpy(qv[s:s + 256]) @ torch.from_numpy(iv).T
        top = torch.topk(scores, min(k, len(ids)), dim=1).indices.numpy()
        out += [[ids[j] for j in row] for row in top]
    return out


def bm25_runs(catalog: list[dict], queries: list[str], workdir: Path) -> list[list[str]]:
    backend = EmbeddedBackend(workdir / "engine")
    backend.ensure_index(IndexSpec("catalog"))
    for s in range(0, len(catalog), 5000):
        backend.bulk_upsert("catalog", catalog[s:s + 5000])
    backend.refresh("catalog")
    runs = [[h.id for h in backend.term_search("catalog", q, size=100)] for q in queries]
    backend.close()
    return runs


def by_metric(runs: dict[str, list[list[str]]], qrels: list[dict[str, int]]) -> dict[str, dict[str, float]]:
    """{"ndcg10": {system: mean}, "recall100": {system: mean}} over the same judged queries."""
    means = {name: ranked_means(r, qrels) for name, r in runs.items()}
    return {m: {name: means[name][m] for name in runs} for m in ("ndcg10", "recall100")}


def latency_ms_p50(encode, queries: list[str], n: int = 200) -> float:
    times = []
    for q in (queries * (n // max(len(queries), 1) + 1))[:n]:
        t = time.perf_counter()
        encode([q])
        times.append((time.perf_counter() - t) * 1000)
    return round(float(np.median(times)), 3)


# -------------------------------------------------------------------------------------------- synthetic

def synthetic(args, workdir: Path) -> dict:
    world = make_world(n_items=2000, n_queries=300, n_users=200, seed=args.seed)
    sessions = simulate_sessions(world, 8000 if args.quick else 20000, seed=args.seed + 1)
    ids = [r["id"] for r in world.catalog]
    triples = build_triples(sessions, ids, TripleConfig(negatives=("hard", "random"), seed=args.seed))
    log(f"synthetic: {len(world.catalog)} items, {len(world.queries)} queries, {len(sessions)} sessions, "
        f"{len(triples)} triples")
    model = TwoTowerModel.build(world.catalog, text_buckets=1 << 15, hidden=(256, 128), dim=64)
    res = train_two_tower(model, triples, world.catalog,
                          TrainConfig(schedule=TWO_TOWER_SCHEDULE.replace(
                              epochs=3 if args.quick else 5, batch_size=512, lr=3e-3, seed=args.seed, progress=False,
                              threads=args.threads)), log=log)
    texts = [q.text for q in world.queries]
    qrels = [dict(q.relevant) for q in world.queries]
    dsr = dense_runs(model.encode_queries(texts), model.encode_items(world.catalog), ids)
    bm25 = bm25_runs(world.catalog, texts, workdir / "synthetic")
    no = [i for i, q in enumerate(world.queries) if q.no_overlap]
    pick = lambda runs, idx: [runs[i] for i in idx]  # noqa: E731
    out = {
        "no_overlap_recall100": by_metric({"dsr": pick(dsr, no), "bm25": pick(bm25, no)}, pick(qrels, no))["recall100"],
        **by_metric({"dsr": dsr, "bm25": bm25}, qrels),
        "queries": len(texts), "no_overlap_queries": len(no), "items": len(ids), "triples": len(triples),
        "train_triples_per_s": round(res.triples_per_s, 1),
        "query_encode_ms_p50": latency_ms_p50(model.encode_queries, texts),
    }
    b = out["no_overlap_recall100"]["bm25"]
    out["no_overlap_recall100"]["ratio"] = round(out["no_overlap_recall100"]["dsr"] / b, 2) if b > 0 else None
    out["ndcg10"]["ratio"] = round(out["ndcg10"]["dsr"] / max(out["ndcg10"]["bm25"], 1e-9), 3)
    log(f"synthetic: {json.dumps(out)}")
    return out


# --------------------------------------------------------------------------------------------- homedepot

def homedepot(args, workdir: Path) -> dict:
    from dsr.encoders.backbone import MiniLMEncoder
    from dsr.encoders.text_cache import embed_texts_cached

    ds = load_homedepot(Path(args.datasets))
    products = catalog_by_id(ds)
    train = grades(ds.split("train").judgments)  # training reads grades 1..3 (thresholds 2.5 / 2.0)
    dev = ds.split("dev").judgments  # gains: grade - 1, scaled
    rng = np.random.default_rng(args.seed)
    n_train, n_dev, n_extra = (600, 150, 1000) if args.quick else (args.real_train, args.real_dev, args.real_extra)
    train_q = [sorted(train)[i] for i in rng.permutation(len(train))[:n_train]]
    dev_q = [q for q in (sorted(dev)[i] for i in rng.permutation(len(dev))) if any(g > 0 for g in dev[q].values())]
    dev_q = dev_q[:n_dev]
    keep = {i for q in train_q for i in train[q]} | {i for q in dev_q for i in dev[q]}
    others = sorted(set(products) - keep)
    keep |= {others[i] for i in rng.permutation(len(others))[:n_extra]}
    catalog = [products[i] for i in sorted(keep) if i in products]
    ids = [r["id"] for r in catalog]
    log(f"homedepot subset: {len(catalog)} items, {len(train_q)} train queries, {len(dev_q)} dev queries")

    enc = MiniLMEncoder()
    cache = REPO / ".dsr" / "cache" / "bench"
    t = time.perf_counter()
    item_bb = embed_texts_cached([item_text(r) for r in catalog], enc.encode_texts, cache, log=log)
    all_q = train_q + dev_q
    q_bb_all = embed_texts_cached(all_q, enc.encode_texts, cache, log=log)
    q_bb = dict(zip(all_q, q_bb_all, strict=True))
    log(f"MiniLM vectors ready in {time.perf_counter() - t:.1f}s (cached in {cache})")

    # hold out 10% of the train queries to pick the epoch; dev stays untouched until the end
    val_q = set(train_q[: max(1, len(train_q) // 10)])
    train_graded = {q: train[q] for q in train_q if q not in val_q}
    validation = {q: {i: 1 for i, g in train[q].items() if g >= 2.5} for q in val_q}
    validation = {q: v for q, v in validation.items() if v}
    triples = judged_triples(train_graded, ids, positive_min=2.5, negative_max=2.0, random_negatives=1,
                             seed=args.seed)
    # A few thousand judged pairs are too few to learn 65k hashed n-gram embeddings (they overfit and
    # cost NDCG), so here the heads read the backbone vector alone (2 text buckets = no n-gram signal);
    # a small learning rate with in-batch softmax keeps the correction close to the backbone.
    model = TwoTowerModel.build(catalog, backbone="minilm", hidden=(256,), text_buckets=2, numeric_fields=())
    res = train_two_tower(
        model, triples, catalog,
        TrainConfig(schedule=TWO_TOWER_SCHEDULE.replace(epochs=4, batch_size=256, lr=3e-4, seed=args.seed,
                                                        progress=False, threads=args.threads),
                    loss="softmax", temperature=0.05),
        item_backbone=item_bb, query_backbone=lambda texts: np.stack([q_bb[t] for t in texts]),
        validation=validation, log=log)

    qrels = [dev[q] for q in dev_q]  # gain = grade - 1 (SOURCE.md)
    dev_bb = np.stack([q_bb[q] for q in dev_q])
    dsr = dense_runs(model.encode_queries(dev_q, backbone=dev_bb), model.encode_items(catalog, backbone=item_bb), ids)
    untuned = dense_runs(dev_bb.astype(np.float32), item_bb.astype(np.float32), ids)
    bm25 = bm25_runs(catalog, dev_q, workdir / "homedepot")
    out = {
        **by_metric({"dsr": dsr, "untuned": untuned, "bm25": bm25}, qrels),
        "items": len(catalog), "train_queries": len(train_graded), "dev_queries": len(dev_q),
        "triples": len(triples), "best_epoch": res.best_epoch,
        "train_triples_per_s": round(res.triples_per_s, 1),
        "query_encode_ms_p50": latency_ms_p50(model.encode_queries, dev_q, n=100),
    }
    log(f"homedepot: {json.dumps(out)}")
    return out


def homedepot_full(args, workdir: Path) -> dict:
    """A trained model directory (`dsr train retrieval`, e.g. with --tune-backbone) on the whole catalog:
    every dev query with a relevant judgment, all 54,667 products, against untuned MiniLM and BM25."""
    from dsr.encoders.backbone import MiniLMEncoder
    from dsr.encoders.text_cache import embed_texts_cached

    ds = load_homedepot(Path(args.datasets))
    catalog = catalog_rows(ds)
    ids = [r["id"] for r in catalog]
    dev = ds.split("dev").judgments
    dev_q = [q for q in sorted(dev) if any(g > 0 for g in dev[q].values())]
    qrels = [dev[q] for q in dev_q]
    log(f"homedepot full: {len(catalog)} items, {len(dev_q)} dev queries, model {args.real_model}")
    model = TwoTowerModel.load(args.real_model)
    t = time.perf_counter()
    dsr_items = np.concatenate([model.encode_items(catalog[s:s + 4096]) for s in range(0, len(catalog), 4096)])
    items_per_s = len(catalog) / (time.perf_counter() - t)
    log(f"DSR item vectors in {time.perf_counter() - t:.0f}s")
    dsr = dense_runs(model.encode_queries(dev_q), dsr_items, ids)
    enc = MiniLMEncoder()
    cache = REPO / ".dsr" / "cache" / "bench"
    item_bb = embed_texts_cached([item_text(r) for r in catalog], enc.encode_texts, cache, log=log)
    untuned = dense_runs(enc.encode_texts(dev_q), item_bb.astype(np.float32), ids)
    bm25 = bm25_runs(catalog, dev_q, workdir / "homedepot-full")
    out = {
        "catalog": "full",
        **by_metric({"dsr": dsr, "untuned": untuned, "bm25": bm25}, qrels),
        "items": len(catalog), "dev_queries": len(dev_q), "model": str(args.real_model),
        "item_encode_per_s": round(items_per_s, 1),
        "query_encode_ms_p50": latency_ms_p50(model.encode_queries, dev_q, n=100),
    }
    info = json.loads((Path(args.real_model) / "config.json").read_text()).get("info", {})
    if "backbone_tuning" in info:
        out["backbone_tuning"] = info["backbone_tuning"]
    log(f"homedepot full: {json.dumps(out)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (a few minutes)")
    ap.add_argument("--skip-real", action="store_true", help="only the synthetic set")
    ap.add_argument("--datasets", default=os.environ.get("DSR_DATASETS", str(REPO.parent / "shared" / "datasets")))
    ap.add_argument("--real-train", type=int, default=2000, help="train queries sampled (full run)")
    ap.add_argument("--real-dev", type=int, default=400, help="dev queries sampled (full run)")
    ap.add_argument("--real-extra", type=int, default=3000, help="random distractor products (full run)")
    ap.add_argument("--real-model", type=Path, default=None,
                    help="evaluate this trained model dir on the full homedepot catalog instead of training heads "
                         "on a subset (train it with `dsr train retrieval --tune-backbone`, see the README)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result: dict = {"bench": "retrieval_quality", "quick": args.quick, "device": device}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        syn = synthetic(args, Path(tmp))
        result["synthetic"] = syn
        result["train_triples_per_s"] = syn["train_triples_per_s"]
        result["query_encode_ms_p50"] = syn["query_encode_ms_p50"]
        if not args.skip_real:
            if (Path(args.datasets) / "homedepot").is_dir():
                run = homedepot_full if args.real_model else homedepot
                result["real"] = {"homedepot": run(args, Path(tmp))}
            else:
                result["real"] = {"homedepot": None, "skipped": f"no homedepot folder under {args.datasets}"}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
