"""Personalisation on the Best Buy click log: the ranker with and without each user's earlier clicks.

    .venv/bin/python bench/personalisation.py --model DIR [--dpsr-model DIR] [--quick] [--depth 5]
        [--ranker-budget 300] [--threads N]

`--model` is a DSR model trained on the set's train split (`bench/train_recipe.py --dataset
bestbuy-small --out X` writes one to `X/run/dsr`). Every search event of the train split (one user's
query at one time and the products they clicked) goes through the product's hybrid first stage
(`dsr.jobs.judged_candidates.FirstStage`: BM25 on an embedded index of the catalog + that DSR
model's neighbours), and two rankers train on the same groups and the same schedule: one without
users, one with each user's last `--depth` clicks before the event (the click-stream features: the
candidate clicked before, its overlap with the clicked items, their price level). The latest tenth
of the train events chooses each ranker's best epoch (each Siamese ranker trains for at most
`--ranker-budget` seconds). The dev split's events (later in time) are
scored the same way, each with the user's clicks strictly before its query time (train and dev
clicks, never the event's own or later ones).

Reported per event (NDCG@10, MRR@10 with the event's clicked products as the relevant ones; ranx
through `dsr.eval.metrics`): DSR (the candidates in DSR order), hybrid (fused order), the ranker
without users, the personal ranker with the history, and the personal ranker with the history
withheld (what the history itself adds); overall and on the events of users with history, each with
a paired t-test against the ranker without users. With `--dpsr-model` (a model trained with
`dsr train retrieval --personalise`) each event also goes through that personalised query tower with
and without the user's history, and the DPSR order is compared with itself without the history.
XGBoost on the same numeric features, with and without the history, is reported beside them. Ends
with one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from common import catalog_by_id, log
from dsr.eval.export import click_sessions, timestamp_of
from dsr.eval.metrics import compare_runs, evaluate_run
from dsr.logs.records import Session

SPLIT_SHARE = 0.1
QUICK_TRAIN_EVENTS = 6000


def dev_events(records: Sequence[Mapping[str, Any]], known: Mapping[str, Any]) -> list[Session]:
    """The split's searches of known users at known times: one user's query at one time and what they clicked
    (the sessions `dsr eval --export` writes)."""
    sessions = click_sessions(r for r in records if str(r.get("sku")) in known)
    return [s for s in sessions if s.user_id and s.ts is not None]


def history_before(records: Sequence[Mapping[str, Any]], events: Sequence[Session], depth: int
                   ) -> dict[str, tuple[str, ...]]:
    """Per event: the user's last `depth` distinct clicked products with a click time before its query time."""
    clicks: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for rec in records:
        at = timestamp_of(str(rec.get("click_time") or ""))
        if at is not None and rec.get("user"):
            clicks[str(rec["user"])].append((at, str(rec["sku"])))
    for stream in clicks.values():
        stream.sort()
    out = {}
    for e in events:
        earlier = [sku for at, sku in clicks.get(str(e.user_id), ()) if e.ts is not None and at < e.ts]
        recent: list[str] = []
        for sku in reversed(earlier):  # most recent first, each product once
            if sku not in recent:
                recent.append(sku)
            if len(recent) == depth:
                break
        out[e.session_id] = tuple(recent)
    return out


def split_by_time(groups: list, ts: Mapping[str, float | None]) -> tuple[list, list]:
    order = sorted(groups, key=lambda g: ts.get(g.group_id) or 0.0)
    cut = int(len(order) * (1 - SPLIT_SHARE))
    return order[:cut], order[cut:]


def run_row(ids: Sequence[str], scores: np.ndarray) -> dict[str, float]:
    order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), i))
    return {ids[i]: float(len(ids) - r) for r, i in enumerate(order)}


def figures(qrels: Mapping[str, Mapping[str, int]], runs: Mapping[str, Mapping[str, Mapping[str, float]]],
            baseline: str) -> dict[str, Any]:
    out: dict[str, Any] = {"events": len(qrels)}
    for name, run in runs.items():
        means = evaluate_run(qrels, dict(run), name).means
        out[name] = {"ndcg10": round(means["ndcg10"], 4), "mrr10": round(means["mrr10"], 4)}
    for c in compare_runs(qrels, {k: dict(v) for k, v in runs.items()}, baseline=baseline):
        out[c.a]["vs_" + baseline] = {"p_ndcg10": float(f"{c.p_value:.3g}"), "wins": c.wins, "ties": c.ties,
                                      "losses": c.losses}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="DSR model trained on bestbuy-small's train split")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_TRAIN_EVENTS} train events, 5 ranker epochs")
    ap.add_argument("--dpsr-model", type=Path, default=None,
                    help="a DSR model trained with `dsr train retrieval --personalise` on the same split: its query "
                         "tower reads the user's earlier clicks; scored per event with and without them")
    ap.add_argument("--depth", type=int, default=5, help="recent clicks per user")
    ap.add_argument("--ranker-budget", type=float, default=300.0,
                    help="seconds each Siamese ranker may train (it keeps its best validated state)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--datasets", default=os.environ.get("DSR_DATASETS"))
    args = ap.parse_args()
    t0 = time.perf_counter()

    import torch

    from dsr.eval.loaders import load_dataset
    from dsr.jobs.judged_candidates import FirstStage, click_session_groups
    from dsr.reranker.features import FeatureConfig, FeatureExtractor
    from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, train_siamese
    from dsr.reranker.xgb import train_xgboost

    torch.set_num_threads(args.threads)
    ds = load_dataset("bestbuy-small", Path(args.datasets) if args.datasets else None)
    catalog = catalog_by_id(ds)
    records = ds.sessions or {}
    train_sessions = click_sessions(r for r in records["train"] if str(r.get("sku")) in catalog)
    if args.quick:
        train_sessions = train_sessions[-QUICK_TRAIN_EVENTS:]  # the latest: closest to the dev split
    t = time.perf_counter()
    personal_groups, skipped = click_session_groups(train_sessions, catalog, model_dir=args.model,
                                                    depth=args.depth, progress=False, log=log)
    plain_groups = [dataclasses.replace(g, user=None) for g in personal_groups]
    with_history = sum(bool(g.user and g.user.get("recent_clicks")) for g in personal_groups)
    log(f"train: {len(personal_groups)} events ({with_history} with history), skipped {skipped}, "
        f"{time.perf_counter() - t:.0f}s")
    ts = {s.session_id: s.ts for s in train_sessions}

    extractor = FeatureExtractor(FeatureConfig(click_depth=args.depth), catalog)
    schedule = RANKER_SCHEDULE.replace(threads=args.threads, progress=False,
                                       **({"epochs": 5} if args.quick else {}))
    rankers: dict[str, Any] = {}
    training: dict[str, Any] = {}
    for name, groups in (("plain", plain_groups), ("personal", personal_groups)):
        fit, val = split_by_time(groups, ts)
        t = time.perf_counter()
        rankers[name], summary = train_siamese(fit, val, extractor,
                                               SiameseTrainConfig(schedule=schedule.within(args.ranker_budget)))
        training[name] = {"best_epoch": summary.best_epoch, "epochs_run": summary.epochs_run,
                          "val": {k: round(v, 4) for k, v in summary.best_val.items()},
                          "seconds": round(time.perf_counter() - t, 1)}
        log(f"siamese {name}: {training[name]}")
        t = time.perf_counter()
        rankers["xgb_" + name], info = train_xgboost(fit, val, extractor, threads=args.threads)
        training["xgb_" + name] = {**info, "seconds": round(time.perf_counter() - t, 1)}
        log(f"xgboost {name}: {training['xgb_' + name]}")

    events = dev_events(records["dev"], catalog)
    histories = history_before([*records["train"], *records["dev"]], events, args.depth)
    qrels = {e.session_id: {sku: 1 for sku in e.clicks} for e in events}
    runs: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    t = time.perf_counter()
    with FirstStage(catalog, model_dir=args.model, progress=False, log=log) as first_stage:
        for e in events:
            cands = first_stage(e.query)
            ids = [str(c.item["id"]) for c in cands]
            user = {"user_id": e.user_id, "recent_clicks": histories[e.session_id]}
            runs["dsr"][e.session_id] = run_row(ids, np.array([-np.inf if c.dsr is None else c.dsr for c in cands]))
            runs["hybrid"][e.session_id] = run_row(ids, -np.arange(len(cands), dtype=np.float64))
            runs["rerank"][e.session_id] = run_row(ids, rankers["plain"].score(e.query, cands, None))
            runs["rerank_personal"][e.session_id] = run_row(ids, rankers["personal"].score(e.query, cands, user))
            runs["rerank_personal_no_history"][e.session_id] = run_row(
                ids, rankers["personal"].score(e.query, cands, {"user_id": e.user_id, "recent_clicks": ()}))
            runs["xgboost"][e.session_id] = run_row(ids, rankers["xgb_plain"].score(e.query, cands, None))
            runs["xgboost_personal"][e.session_id] = run_row(ids, rankers["xgb_personal"].score(e.query, cands, user))
    log(f"dev: {len(events)} events scored in {time.perf_counter() - t:.0f}s")
    if args.dpsr_model is not None:
        t = time.perf_counter()
        with FirstStage(catalog, model_dir=args.dpsr_model, progress=False, log=log) as personal_stage:
            for e in events:
                user = {"user_id": e.user_id, "recent_clicks": histories[e.session_id]}
                for name, who in (("dpsr", user), ("dpsr_no_history", {"user_id": e.user_id, "recent_clicks": ()})):
                    cands = personal_stage(e.query, who)
                    runs[name][e.session_id] = run_row([str(c.item["id"]) for c in cands],
                                                     np.array([-np.inf if c.dsr is None else c.dsr for c in cands]))
        log(f"dev: {len(events)} events through the DPSR query tower in {time.perf_counter() - t:.0f}s")
    historied = {e.session_id for e in events if histories[e.session_id]}
    result = {
        "dataset": "bestbuy-small", "model": str(args.model), "depth": args.depth, "quick": args.quick,
        "train_events": len(personal_groups), "train_events_with_history": with_history, "training": training,
        "dpsr_model": str(args.dpsr_model) if args.dpsr_model else None,
        "dev_all": figures(qrels, runs, "rerank"),
        "dev_with_history": figures({k: v for k, v in qrels.items() if k in historied},
                                    {n: {k: v for k, v in r.items() if k in historied} for n, r in runs.items()},
                                    "rerank"),
        **({"dpsr_vs_no_history": {
            "all": figures(qrels, {n: runs[n] for n in ("dpsr", "dpsr_no_history")}, "dpsr_no_history"),
            "with_history": figures({k: v for k, v in qrels.items() if k in historied},
                                    {n: {k: v for k, v in runs[n].items() if k in historied}
                                     for n in ("dpsr", "dpsr_no_history")}, "dpsr_no_history")}}
           if args.dpsr_model else {}),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    log(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
