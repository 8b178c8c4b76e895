"""Pairwise re-ranker benchmark: first-stage order vs XGBoost vs Siamese (numeric / all features).

Synthetic logs (planted personal brand and price preferences): session AUC and NDCG@5 on held-out
later sessions, against the logged preference levels (as in DPR), plus NDCG@5 against the planted
personal grades. Beside the models, two same-run ceilings order each test session by the simulator's
own click propensity (examination at the shown position x attractiveness), with and without the
planted personal preference: they bound what any ranker, and personal features in particular, can
add to session AUC on these logs. Real data (homedepot): pairs from graded judgments within a query,
trained on train, reported on dev over each query's first-stage (BM25, embedded backend) top 100
plus its judged items.
Latency: scoring 100 candidates (features + tower), one thread and all threads.

    .venv/bin/python bench/ranker.py [--quick] [--skip-real]

The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from common import catalog_by_id, log
from dsr.eval.loaders import load_homedepot
from dsr.eval.session_metrics import mean_over_groups
from dsr.logs.synthetic import click_probability, examine_probability, make_world, simulate_sessions
from dsr.reranker.base import Candidate
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import (
    RankGroup,
    click_histories,
    fused_order_scores,
    groups_from_judgments,
    groups_from_sessions,
)
from dsr.reranker.pairs import build_pairs
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, split_by_group, train_siamese
from dsr.reranker.xgb import train_xgboost

ORDERINGS = ("first_stage", "xgboost", "siamese_numeric", "siamese_all")


def train_all(train, val, catalog, args, *, epochs: int) -> dict:
    ext = FeatureExtractor(FeatureConfig(), catalog)
    out = {}
    t = time.perf_counter()
    out["xgboost"], info = train_xgboost(train, val, ext, threads=args.threads)
    log(f"  xgboost {info} {time.perf_counter() - t:.0f}s")
    for name, use_text in (("siamese_numeric", False), ("siamese_all", True)):
        t = time.perf_counter()
        out[name], s = train_siamese(train, val, ext, SiameseTrainConfig(
            schedule=RANKER_SCHEDULE.replace(epochs=epochs, patience=1, threads=args.threads, progress=False),
            use_text=use_text))
        log(f"  {name}: best epoch {s.best_epoch}/{s.epochs_run} val {s.best_val} {time.perf_counter() - t:.0f}s")
    return out


def score_all(models: dict, groups: list[RankGroup]) -> dict[str, list[np.ndarray]]:
    scores = {"first_stage": fused_order_scores(groups)}
    for name, model in models.items():
        scores[name] = [model.score(g.query, g.candidates, g.user) for g in groups]
    return scores


def synthetic(args) -> tuple[dict, dict]:
    n_items, n_queries, n_users, n_sessions = (1000, 150, 100, 6000) if args.quick else (2000, 300, 200, 30000)
    world = make_world(n_items=n_items, n_queries=n_queries, n_users=n_users, seed=0)
    sessions = simulate_sessions(world, n_sessions, seed=1)
    catalog = world.items_by_id
    pairs, report = build_pairs(sessions, known_ids=catalog)
    log(f"synthetic: {report.summary()}")
    groups = groups_from_sessions(pairs, catalog, histories=click_histories(sessions))
    cut = int(len(groups) * 0.8)  # later sessions are the test set
    train, val = split_by_group(groups[:cut], 0.1)
    test = groups[cut:]
    models = train_all(train, val, catalog, args, epochs=4 if args.quick else 10)
    scores = score_all(models, test)
    out: dict = {"session_auc": {}, "ndcg5": {}, "ndcg5_planted": {}}
    planted = [[world.personal_grade(g.query, str(c.item["id"]), g.user["user_id"]) for c in g.candidates]
               for g in test]
    for name in ORDERINGS:
        m = mean_over_groups(scores[name], [g.labels for g in test], k=(5,))
        p = mean_over_groups(scores[name], planted, k=(5,))
        out["session_auc"][name] = round(m["session_auc"], 4)
        out["ndcg5"][name] = round(m["ndcg@5"], 4)
        out["ndcg5_planted"][name] = round(p["ndcg@5"], 4)
    out["ceiling"] = ceilings(world, test)
    headroom = out["ceiling"]["session_auc"]["click_propensity"] - out["session_auc"]["xgboost"]
    gain = out["session_auc"]["siamese_all"] - out["session_auc"]["xgboost"]
    out["siamese_all_share_of_headroom_over_xgboost"] = round(gain / headroom, 3) if headroom > 0 else None
    out["test_sessions"] = len(test)
    out["train_sessions"] = len(train)
    return out, {"models": models, "test": test, "catalog": catalog}


def ceilings(world, test: list[RankGroup]) -> dict:
    """What a perfect model could reach on the same test sessions, with and without the user.

    `click_propensity` orders each session by the simulator's own chance of a click (examination at
    the shown position x attractiveness of the personal grade): no ranker can beat it in expectation.
    `relevance_only` is the same without the planted personal preference. Their difference bounds
    how much session AUC personal features can add at all; the distance from XGBoost to
    `click_propensity` bounds any margin over the baseline.
    """
    def order(personal: bool) -> list[np.ndarray]:
        out = []
        for g in test:
            row = []
            for c in g.candidates:
                iid = str(c.item["id"])
                grade = (world.personal_grade(g.query, iid, g.user["user_id"]) if personal
                         else float(world.grade(g.query, iid)))
                row.append(examine_probability(int(c.fused_rank)) * click_probability(grade))
            out.append(np.array(row))
        return out

    result: dict = {"session_auc": {}, "ndcg5": {}}
    for name, personal in (("relevance_only", False), ("click_propensity", True)):
        m = mean_over_groups(order(personal), [g.labels for g in test], k=(5,))
        result["session_auc"][name] = round(m["session_auc"], 4)
        result["ndcg5"][name] = round(m["ndcg@5"], 4)
    return result


def homedepot(args) -> dict:
    from dsr.backends.base import IndexSpec
    from dsr.backends.embedded import EmbeddedBackend

    ds = load_homedepot()  # $DSR_DATASETS or ../shared/datasets
    catalog = catalog_by_id(ds)
    # gains: grade - 1, scaled to integers; the labels' order and NDCG (linear gain) do not see the scale
    train_j, dev_j = ds.split("train").judgments, ds.split("dev").judgments
    rng = np.random.default_rng(0)
    n_train, n_dev = (800, 300) if args.quick else (3000, 1000)
    train_j = {q: train_j[q] for q in rng.permutation(sorted(train_j))[:n_train]}
    dev_j = {q: dev_j[q] for q in rng.permutation(sorted(dev_j))[:n_dev]}
    with tempfile.TemporaryDirectory() as tmp:
        backend = EmbeddedBackend(tmp)
        backend.ensure_index(IndexSpec(name="hd"))
        t = time.perf_counter()
        res = backend.bulk_upsert("hd", catalog.values())
        backend.refresh("hd")
        log(f"homedepot: indexed {len(res.succeeded)} products ({len(res.failed)} failed) "
            f"in {time.perf_counter() - t:.0f}s")

        def bm25(query: str) -> list[Candidate]:
            hits = backend.term_search("hd", query, size=300)
            return [Candidate(item=catalog.get(h.id, h.source), bm25=h.score, fused_rank=r)
                    for r, h in enumerate(hits)]

        t = time.perf_counter()
        train, skipped_t = groups_from_judgments(train_j, catalog, first_stage=bm25, add_missed_judged=False,
                                                 max_pairs=60)
        dev, skipped_d = groups_from_judgments(dev_j, catalog, first_stage=bm25)
        log(f"  groups: {len(train)} train {skipped_t}, {len(dev)} dev {skipped_d} {time.perf_counter() - t:.0f}s")
    fit, val = split_by_group(train, 0.1)
    models = train_all(fit, val, catalog, args, epochs=3 if args.quick else 8)
    scores = score_all(models, dev)
    out: dict = {"pairwise_auc": {}, "ndcg5": {}, "ndcg10": {}}
    for name in ORDERINGS:
        m = mean_over_groups(scores[name], [g.labels for g in dev], k=(5, 10))
        out["pairwise_auc"][name] = round(m["session_auc"], 4)
        out["ndcg5"][name] = round(m["ndcg@5"], 4)
        out["ndcg10"][name] = round(m["ndcg@10"], 4)
    out["dev_queries"] = len(dev)
    out["train_queries"] = len(train)
    return out


def latency(ctx: dict, threads: int, reps: int, names: tuple[str, ...] = ("siamese_all", "xgboost")) -> dict:
    test = list(ctx["test"])
    catalog = list(ctx["catalog"].values())
    rng = np.random.default_rng(0)
    out = {}
    prev = torch.get_num_threads()
    for name in names:
        model = ctx["models"][name]
        for label, n in (("1thread", 1), ("all_threads", threads)):
            torch.set_num_threads(n)
            times = []
            for r in range(reps):
                g = test[r % len(test)]
                cands = [Candidate(item=catalog[int(i)], bm25=float(rng.random()), fused_rank=k)
                         for k, i in enumerate(rng.choice(len(catalog), 100, replace=False))]
                t = time.perf_counter()
                model.score(g.query, cands, g.user)
                times.append((time.perf_counter() - t) * 1000)
            times = times[reps // 10:]  # the first calls warm the caches
            out[f"{name}_{label}"] = {"p50": round(float(np.percentile(times, 50)), 3),
                                      "p99": round(float(np.percentile(times, 99)), 3)}
    torch.set_num_threads(prev)
    return out


def latency_untrained(args) -> dict:
    from dsr.reranker.siamese import SiameseRanker
    from dsr.reranker.tower import RankerTower, TowerConfig

    world = make_world(n_items=1000, n_queries=150, n_users=100, seed=0)
    sessions = simulate_sessions(world, 500, seed=1)
    catalog = world.items_by_id
    pairs, _ = build_pairs(sessions, known_ids=catalog)
    test = groups_from_sessions(pairs, catalog, histories=click_histories(sessions))
    ext = FeatureExtractor(FeatureConfig(), catalog)
    tower = RankerTower(TowerConfig(n_numeric=len(ext.config.numeric), buckets=ext.config.buckets))
    model = SiameseRanker(ext, tower)
    out = latency({"models": {"siamese_all": model}, "test": test, "catalog": catalog}, args.threads, 1000,
                  names=("siamese_all",))
    # the tower alone on already extracted features
    g = test[0]
    cands = [Candidate(item=c, fused_rank=k) for k, c in enumerate(list(catalog.values())[:100])]
    f = ext.extract(g.query, cands, g.user)
    inputs = (torch.from_numpy(f.numeric), torch.from_numpy(f.query_ids).expand(100, -1),
              torch.from_numpy(f.item_ids), torch.from_numpy(f.click_ids).expand(100, -1),
              torch.from_numpy(f.click_cross))
    for label, n in (("1thread", 1), ("all_threads", args.threads)):
        torch.set_num_threads(n)
        times = []
        with torch.inference_mode():
            for _ in range(1000):
                t = time.perf_counter()
                tower(*inputs)
                times.append((time.perf_counter() - t) * 1000)
        out[f"tower_only_{label}"] = {"p50": round(float(np.percentile(times[100:], 50)), 3),
                                      "p99": round(float(np.percentile(times[100:], 99)), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller world and subsets (under 5 minutes on a free CPU)")
    ap.add_argument("--skip-real", action="store_true", help="skip the homedepot part")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--latency-only", action="store_true",
                    help="only the scoring latency, with an untrained tower of the same shape")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    if args.latency_only:
        print(json.dumps({"latency_ms": latency_untrained(args), "threads": args.threads,
                          "seconds": round(time.perf_counter() - t0, 1)}))
        return
    syn, ctx = synthetic(args)
    log(f"synthetic: {syn}")
    lat = latency(ctx, args.threads, 200 if args.quick else 1000)
    log(f"latency ms: {lat}")
    real = {} if args.skip_real else {"homedepot": homedepot(args)}
    result = {
        "synthetic": syn,
        "real": real,
        "score100_ms_p50": {"1thread": lat["siamese_all_1thread"]["p50"],
                            "all_threads": lat["siamese_all_all_threads"]["p50"]},
        "score100_ms_p99": {"1thread": lat["siamese_all_1thread"]["p99"],
                            "all_threads": lat["siamese_all_all_threads"]["p99"]},
        "xgboost_score100_ms_p50": {"1thread": lat["xgboost_1thread"]["p50"],
                                    "all_threads": lat["xgboost_all_threads"]["p50"]},
        "siamese_all_minus_xgboost_session_auc": round(syn["session_auc"]["siamese_all"]
                                                       - syn["session_auc"]["xgboost"], 4),
        "threads": args.threads,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
