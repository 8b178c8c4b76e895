"""Knowledge distillation on Home Depot: teacher vs label-only student vs students on 1x..8x teacher labels.

What is compared (all re-rank the BM25 top-K of the embedded backend for each dev query; NDCG@10
through ranx against every judged item of the dev split, gain = grade - 1, unjudged = 0):

* `bm25`           the first stage's own order (the baseline every re-ranker must beat);
* `teacher`        the MiniLM cross-encoder, fine-tuned with soft targets on the human-labelled
                   train queries (their judged items plus BM25 hits they did not judge, as grade 1);
* `label_only`     the Siamese ranker (`dsr.reranker.trainer.train_siamese`, BCE on pairs) trained on
                   the same human-labelled queries (BM25 top-K + judged, unjudged = not relevant);
* `distilled_Nx`   the same Siamese tower trained with margin-MSE on teacher scores of N times as
                   many train queries (1x: the labelled queries' own candidates relabelled by the
                   teacher; 2x..8x: further train queries used as *unlabelled* queries, BM25 top-K
                   candidates only — their human judgments are never read). When the train split has
                   too few queries left (`--label-queries all` gives them all to the teacher), the
                   rest are written from catalog titles (`dsr.reranker.distill.queries_from_titles`).

Students early-stop on a held-out set of train queries (human labels), never on dev. Latency: one
query with 100 candidates on the CPU (torch threads as given), median of repeated runs, teacher vs
student; the GPU figures are null unless CUDA is present. With --crowdflower the same models are
also scored zero-shot on the CrowdFlower dev split (trained on Home Depot only).

    .venv/bin/python bench/distillation.py --quick     # ~60 labelled queries, K=15 (tens of minutes on 2 busy cores)
    .venv/bin/python bench/distillation.py             # 400 labelled queries, K=30
    .venv/bin/python bench/distillation.py --label-queries all --teacher-lr 1e-4 --teacher-pairs 0 --negatives 4
                                                       # every train query labelled; a GPU run

Writes table.md, curve.png and results.json under --out; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from common import log, ranked_run
from dsr.catalog import Item, item_text
from dsr.eval.loaders import load_crowdflower, load_homedepot
from dsr.eval.metrics import evaluate_run
from dsr.jobs.evaluate.pipelines import EvalContext
from dsr.reranker.base import Candidate
from dsr.reranker.distill import (
    STUDENT_SCHEDULE,
    TEACHER_SCHEDULE,
    AugmentConfig,
    CrossEncoderTeacher,
    GradedText,
    GradeScale,
    StudentTrainConfig,
    TeacherTrainConfig,
    augment,
    margin_groups,
    queries_from_titles,
    read_scored,
    train_student,
    train_teacher,
)
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import groups_from_judgments
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, train_siamese
from dsr.settings import ConnectionSettings


class Bm25:
    """BM25 top-K from the embedded backend, memoised, as `Candidate`s with their first-stage scores."""

    name = "bm25"

    def __init__(self, ctx: EvalContext, catalog: Mapping[str, Item], k: int) -> None:
        self.backend, self.index, self.catalog, self.k = ctx.backend, ctx.index, catalog, k
        self._cache: dict[str, list[tuple[str, float]]] = {}

    def hits(self, query: str) -> list[tuple[str, float]]:
        if query not in self._cache:
            hits = self.backend.term_search(self.index, query, size=self.k)
            self._cache[query] = [(h.id, float(h.score)) for h in hits if h.id in self.catalog]
        return self._cache[query]

    def candidates(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:  # CandidateSource
        return [self.hits(q)[:k] for q in queries]

    def first_stage(self, query: str) -> list[Candidate]:
        return [Candidate(item=self.catalog[i], bm25=s, fused_rank=r) for r, (i, s) in enumerate(self.hits(query))]


def setup(dataset, data_dir: Path, k: int) -> tuple[dict[str, Item], Bm25]:
    ctx = EvalContext(dataset, ConnectionSettings(data_dir=data_dir), with_vectors=False, progress=False)
    catalog = {str(it["id"]): it for it in ctx.items}
    t = time.perf_counter()
    bm25 = Bm25(ctx, catalog, k)
    log(f"{dataset.name}: {len(catalog)} items, BM25 index ready in {time.perf_counter() - t:.1f}s")
    return catalog, bm25


def ndcg10(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], name: str) -> float:
    return float(evaluate_run(qrels, run, name).means["ndcg10"])


def runs_for(models: Mapping[str, Any], queries: Sequence[str], bm25: Bm25) -> dict[str, dict[str, dict[str, float]]]:
    runs: dict[str, dict[str, dict[str, float]]] = {name: {} for name in ["bm25", *models]}
    for q in queries:
        cands = bm25.first_stage(q)
        if not cands:
            continue
        ids = [str(c.item["id"]) for c in cands]
        runs["bm25"][q] = ranked_run(ids)
        for name, model in models.items():
            scores = model.score(q, cands)
            runs[name][q] = {i: float(s) for i, s in zip(ids, scores, strict=True)}
    return runs


def latency_ms(model: Any, query: str, cands: Sequence[Candidate], reps: int) -> float:
    model.score(query, cands)  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        model.score(query, cands)
        times.append((time.perf_counter() - t) * 1000)
    return float(statistics.median(times))


def _training(summary: Any, seconds: float) -> dict[str, Any]:
    """Where a student's early stopping settled, and its validation figures there."""
    return {"best_epoch": summary.best_epoch, "epochs_run": summary.epochs_run, "seconds": round(seconds, 1),
            "best_val": {k: round(v, 4) for k, v in summary.best_val.items()}}


def plot(path: Path, scales: Sequence[int], results: Mapping[str, float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [0, *scales]
    ys = [results["label_only"], *[results[f"distilled_{s}x"] for s in scales]]
    ax.plot(range(len(xs)), ys, marker="o", label="Siamese student")
    ax.axhline(results["teacher"], color="tab:red", linestyle="--", label="cross-encoder teacher")
    ax.axhline(results["bm25"], color="grey", linestyle=":", label="BM25 (first stage)")
    ax.set_xticks(range(len(xs)), ["labels only", *[f"{s}x teacher" for s in scales]])
    ax.set_ylabel("NDCG@10 (dev)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def split_queries(
    train: Sequence[str], n_label: int | None, n_val: int, max_scale: int, *, seed: int,
    titles: Sequence[Item] | None, held_out: Iterable[str],
) -> tuple[list[str], list[str], list[str], int]:
    """Labelled, validation and unlabelled queries, and how many of the unlabelled are real train queries.

    One deterministic order of the train queries: labelled first (`None`: all but the validation
    ones), then validation, then unlabelled for augmentation; when those run out, the rest are
    written from `titles` (never a train or `held_out` query).
    """
    order = sorted(train, key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    n_label = len(order) - n_val if n_label is None else n_label
    need = (max_scale - 1) * n_label
    labelled, val_q = order[:n_label], order[n_label:n_label + n_val]
    unlabelled = order[n_label + n_val:n_label + n_val + need]
    real = len(unlabelled)
    if real < need:
        if titles is None:
            raise SystemExit(f"only {real} unlabelled train queries for {max_scale}x; lower --label-queries "
                             "or allow --title-queries")
        unlabelled += queries_from_titles(titles, need - real, seed=seed, exclude=[*order, *held_out])
        if len(unlabelled) < need:
            raise SystemExit(f"the catalog gives only {len(unlabelled) - real} title queries")
    return labelled, val_q, unlabelled, real


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small run: 60 labelled queries, K=15, 150 dev queries")
    ap.add_argument("--label-queries", default=None,
                    help="human-labelled train queries: a number (default 400; 60 quick) or 'all' (every train "
                         "query but the validation ones)")
    ap.add_argument("--title-queries", action=argparse.BooleanOptionalAction, default=True,
                    help="when the train split runs out of unlabelled queries, write the rest from titles")
    ap.add_argument("--dev-queries", type=int, default=None, help="dev queries scored (default all; 150 quick)")
    ap.add_argument("--val-queries", type=int, default=None, help="held-out train queries for early stopping")
    ap.add_argument("--k", type=int, default=None, help="BM25 candidates per query (default 30; 15 quick)")
    ap.add_argument("--scales", default="1,2,4,8", help="augmentation multiples of the labelled queries")
    ap.add_argument("--negatives", type=int, default=2, help="unjudged BM25 hits per query in the teacher's data")
    ap.add_argument("--teacher-pairs", type=int, default=None,
                    help="teacher training pairs (default 4000; 900 quick; 0: every pair)")
    ap.add_argument("--max-length", type=int, default=None, help="teacher tokens (default 48; 32 quick)")
    ap.add_argument("--teacher-epochs", type=int, default=1)
    ap.add_argument("--teacher", type=Path, default=None,
                    help="a teacher directory saved by an earlier run or `dsr train teacher` (skips training)")
    ap.add_argument("--teacher-lr", type=float, default=TEACHER_SCHEDULE.lr, help="teacher transformer learning rate")
    ap.add_argument("--freeze-layers", type=int, default=None, help="frozen bottom teacher layers (default 0; 2 quick)")
    ap.add_argument("--student-epochs", type=int, default=15)
    ap.add_argument("--latency-reps", type=int, default=None)
    ap.add_argument("--crowdflower", action=argparse.BooleanOptionalAction, default=True,
                    help="also score the models zero-shot on the CrowdFlower dev split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=Path(".dsr"), help="where the eval BM25 indexes are cached")
    ap.add_argument("--out", type=Path, default=Path("bench/out/distillation"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    q = args.quick
    n_dev = args.dev_queries if args.dev_queries is not None else (150 if q else None)
    n_val = args.val_queries or (60 if q else 200)
    k = args.k or (15 if q else 30)
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    teacher_pairs = (900 if q else 4000) if args.teacher_pairs is None else (args.teacher_pairs or None)
    max_length = args.max_length or (32 if q else 48)
    freeze = args.freeze_layers if args.freeze_layers is not None else (2 if q else 0)
    reps = args.latency_reps or (5 if q else 20)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    ds = load_homedepot()
    catalog, bm25 = setup(ds, args.data_dir, k)
    train = ds.split("train").judgments
    dev = ds.split("dev").sample(n_dev).judgments
    n_label = None if args.label_queries == "all" else int(args.label_queries or (60 if q else 400))
    labelled, val_q, unlabelled, real_unlabelled = split_queries(
        list(train), n_label, n_val, max(scales) if scales else 1, seed=args.seed,
        titles=list(catalog.values()) if args.title_queries else None, held_out=ds.split("dev").judgments)
    n_label = len(labelled)
    max_gain = max(g for grades in train.values() for g in grades.values())
    scale = GradeScale(0, max_gain, 3)  # Home Depot grades 1..3 (gain 0..max) as 3 soft classes
    log(f"labelled {len(labelled)}, validation {len(val_q)}, unlabelled {len(unlabelled)} ({real_unlabelled} "
        f"from train, {len(unlabelled) - real_unlabelled} from titles), dev {len(dev)} queries; K={k}")

    # --- teacher ------------------------------------------------------------------------------------
    rng = np.random.default_rng(args.seed)
    examples: list[GradedText] = []
    for query in labelled:
        grades = train[query]
        examples += [GradedText(query, item_text(catalog[i]), float(g)) for i, g in grades.items() if i in catalog]
        unjudged = [i for i, _ in bm25.hits(query) if i not in grades]
        for j in rng.permutation(len(unjudged))[: args.negatives]:
            examples.append(GradedText(query, item_text(catalog[unjudged[int(j)]]), 0.0))
    t = time.perf_counter()
    teacher_train_s: float | None = None
    if args.teacher is not None:  # trained before (e.g. on a GPU machine): its training labels are the user's word
        teacher = CrossEncoderTeacher.load(args.teacher)
        log(f"teacher loaded from {args.teacher}")
    else:
        teacher, trep = train_teacher(examples, scale, TeacherTrainConfig(
            schedule=TEACHER_SCHEDULE.replace(epochs=args.teacher_epochs, batch_size=32, lr=args.teacher_lr,
                                              seed=args.seed, threads=args.threads, progress=True),
            max_length=max_length, max_pairs=teacher_pairs, freeze_layers=freeze))
        teacher_train_s = time.perf_counter() - t
        log(f"teacher: {trep.pairs} pairs, {trep.steps} steps in {teacher_train_s:.0f}s, loss "
            f"{trep.first_loss:.3f} -> {trep.last_loss:.3f}")
        teacher.save(args.out / "teacher")

    # --- human-labelled groups (label-only student) and validation groups ----------------------------
    label_judg = {query: train[query] for query in labelled}
    label_groups, _ = groups_from_judgments(label_judg, catalog, first_stage=bm25.first_stage, max_pairs=200,
                                            seed=args.seed)
    val_groups, _ = groups_from_judgments({query: train[query] for query in val_q}, catalog,
                                          first_stage=bm25.first_stage, seed=args.seed)
    extractor = FeatureExtractor(FeatureConfig(), catalog)
    t = time.perf_counter()
    label_only, lsum = train_siamese(label_groups, val_groups, extractor, SiameseTrainConfig(
        schedule=RANKER_SCHEDULE.replace(epochs=args.student_epochs, seed=args.seed, threads=args.threads,
                                         progress=False)))
    log(f"label-only student: {len(label_groups)} groups, best epoch {lsum.best_epoch} "
        f"({time.perf_counter() - t:.0f}s)")
    training = {"label_only": _training(lsum, time.perf_counter() - t)}

    # --- augmentation: the teacher labels labelled + unlabelled queries' candidates ------------------
    t = time.perf_counter()
    aug_dir = args.out / "augmented"
    if args.teacher is None:
        shutil.rmtree(aug_dir, ignore_errors=True)  # labelled by this run's teacher only
    # a loaded teacher is the same model in every run: its finished shards are resumed
    judged_items = {query: {i: 0.0 for i in train[query]} for query in labelled}  # ids only; grades unused
    rep = augment([*labelled, *unlabelled], teacher, catalog, aug_dir, sources=[bm25], judged=judged_items,
                  config=AugmentConfig(k=k, shard_queries=64, batch_size=64), progress=True)
    augment_s = time.perf_counter() - t
    log(f"augment: {rep.summary()} in {augment_s:.0f}s")
    scored = list(read_scored(aug_dir))
    pos = {query: n for n, query in enumerate([*labelled, *unlabelled])}
    students: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for s in scales:
        keep = {query for query, n in pos.items() if n < s * n_label}
        rows = [r for r in scored if r.query in keep]
        groups, _ = margin_groups(rows, catalog, max_pairs_per_query=200, seed=args.seed)
        t = time.perf_counter()
        students[f"distilled_{s}x"], ssum = train_student(groups, extractor, StudentTrainConfig(
            schedule=STUDENT_SCHEDULE.replace(epochs=args.student_epochs, seed=args.seed, threads=args.threads)),
            val_groups=val_groups)
        sizes[f"distilled_{s}x"] = len(rows)
        training[f"distilled_{s}x"] = _training(ssum, time.perf_counter() - t)
        log(f"student {s}x: {len(groups)} queries, {len(rows)} teacher-labelled pairs, {ssum.pairs} margin pairs, "
            f"best epoch {ssum.best_epoch} ({time.perf_counter() - t:.0f}s)")

    # --- evaluation on dev ---------------------------------------------------------------------------
    models = {"teacher": teacher, "label_only": label_only, **students}
    t = time.perf_counter()
    runs = runs_for(models, list(dev), bm25)
    results = {name: ndcg10(dev, run, name) for name, run in runs.items()}
    log(f"homedepot dev scored in {time.perf_counter() - t:.0f}s: "
        + ", ".join(f"{n} {v:.4f}" for n, v in results.items()))

    cf_results: dict[str, float] | None = None
    if args.crowdflower:
        cf = load_crowdflower()
        _, cf_bm25 = setup(cf, args.data_dir, k)
        cf_dev = cf.split("dev").judgments
        cf_runs = runs_for(models, list(cf_dev), cf_bm25)
        cf_results = {name: ndcg10(cf_dev, run, name) for name, run in cf_runs.items()}
        log("crowdflower dev (zero-shot): " + ", ".join(f"{n} {v:.4f}" for n, v in cf_results.items()))

    # --- latency: 100 candidates, CPU ----------------------------------------------------------------
    lat_query = next(query for query in dev if len(bm25.first_stage(query)) > 0)
    hits = bm25.backend.term_search(bm25.index, lat_query, size=100)
    cands = [Candidate(item=catalog[h.id], bm25=h.score, fused_rank=r) for r, h in enumerate(hits)]
    while len(cands) < 100:  # pad with further catalog items so every model sees exactly 100
        cands.append(Candidate(item=catalog[list(catalog)[len(cands)]], fused_rank=len(cands)))
    teacher.to("cpu")
    student_best = students[f"distilled_{max(scales)}x"] if scales else label_only
    lat = {"teacher_cpu_ms": latency_ms(teacher, lat_query, cands, reps),
           "student_cpu_ms": latency_ms(student_best, lat_query, cands, reps * 4)}
    lat["speedup"] = lat["teacher_cpu_ms"] / lat["student_cpu_ms"]
    if torch.cuda.is_available():
        teacher.to("cuda")
        lat["teacher_gpu_ms"] = latency_ms(teacher, lat_query, cands, reps * 4)
    else:
        lat["teacher_gpu_ms"] = None
    log(f"latency, 100 candidates on CPU ({args.threads} threads): teacher {lat['teacher_cpu_ms']:.1f} ms, "
        f"student {lat['student_cpu_ms']:.2f} ms ({lat['speedup']:.0f}x)")

    # --- report --------------------------------------------------------------------------------------
    names = ["bm25", "teacher", "label_only", *students]
    lines = ["| model | training labels | homedepot dev NDCG@10 |" + (" crowdflower dev NDCG@10 (zero-shot) |"
                                                                   if cf_results else ""),
             "| --- | --- | --- |" + (" --- |" if cf_results else "")]
    for name in names:
        what = {"bm25": "-", "teacher": f"human, {len(labelled)} queries" if args.teacher is None
                else f"loaded from {args.teacher}",
                "label_only": f"human, {len(labelled)} queries"}.get(name, f"teacher, {sizes.get(name, 0)} pairs")
        row = f"| {name} | {what} | {results[name]:.4f} |"
        if cf_results:
            row += f" {cf_results[name]:.4f} |"
        lines.append(row)
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table + "\n\n" + (
        f"Latency for 100 candidates on the CPU ({args.threads} threads, median): teacher "
        f"{lat['teacher_cpu_ms']:.1f} ms, student {lat['student_cpu_ms']:.2f} ms.\n"))
    plot(args.out / "curve.png", scales, results, f"Home Depot dev, {len(dev)} queries, re-ranking BM25 top-{k}")
    print(table)
    summary = {
        "bench": "distillation", "quick": q, "dataset": "homedepot", "dev_queries": len(dev), "k": k,
        "labelled_queries": len(labelled), "unlabelled_train_queries": real_unlabelled,
        "unlabelled_title_queries": len(unlabelled) - real_unlabelled,
        "ndcg10": {n: round(results[n], 4) for n in names},
        "ndcg10_crowdflower_zero_shot": {n: round(v, 4) for n, v in cf_results.items()} if cf_results else None,
        "teacher_labelled_pairs": sizes,
        "student_minus_teacher_at_max_scale": round(results[f"distilled_{max(scales)}x"] - results["teacher"], 4)
        if scales else None,
        "latency_ms_100_candidates": {k2: (round(v, 3) if v is not None else None) for k2, v in lat.items()},
        "student_training": training,
        "teacher_train_s": round(teacher_train_s, 1) if teacher_train_s is not None else None,
        "teacher_dir": str(args.teacher) if args.teacher is not None else None, "augment_s": round(augment_s, 1),
        "total_s": round(time.perf_counter() - started, 1), "threads": args.threads,
        "out": str(args.out),
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
