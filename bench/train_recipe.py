"""`dsr train` with no tuning flags on a shared set: the recipe it chose, its validation table, and the
set's dev split through the models it wrote, each with BM25 measured in the same run.

    .venv/bin/python bench/train_recipe.py [--dataset crowdflower] [--quick] [--time-budget 20m]
        [--threads N] [--out DIR] [--keep] [--start-from OTHER_RUN]

The set's train split is exported as `dsr eval --export train` writes it (catalog, graded judgments or,
for click logs, sessions), `dsr train` runs on it in a subprocess (the command a shop runs), then the
dev split is scored with `dsr eval`'s runner on the embedded backend: BM25, DSR, hybrid (RRF) and
hybrid + re-rank. `--quick` gives the run a 10-minute time budget (each stage stops at its share) and
scores 200 dev queries. The output folder is emptied first unless `--keep` (then the run resumes).

Ends with ONE JSON line: NDCG@10 / recall@100 per pipeline on validation and dev, the ratio of each
to BM25's NDCG@10 in the same run, the recipe, the ranker that serves with the validation figures it
was chosen on (session AUC and NDCG@10 of the Siamese ranker, XGBoost on the same numeric features
and the first stage's fused and DSR orders), and the run times. With `--start-from` (transfer from
another set's run) the starting models are also scored on the dev split as they are (zero-shot).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import log

REPO = Path(__file__).resolve().parents[1]
ROWS = {"bm25": "bm25", "dsr": "dsr", "hybrid": "hybrid-rrf", "hybrid+rerank": "hybrid+rerank"}
QUICK_BUDGET = "10m"
QUICK_DEV_QUERIES = 200


def figures(ndcg: dict[str, float], recall: dict[str, float]) -> dict[str, object]:
    base = ndcg.get("bm25") or 0.0
    return {"ndcg10": {k: round(v, 4) for k, v in ndcg.items()},
            "recall100": {k: round(v, 4) for k, v in recall.items()},
            "ratio_ndcg10_vs_bm25": {k: round(v / base, 4) if base else None for k, v in ndcg.items()}}


def export_train(dataset: str, root: Path, folder: Path) -> list[str]:
    """The set's train split as files, and the `dsr train` data options that read them."""
    from dsr.eval.export import export_split
    from dsr.eval.loaders import load_dataset

    written = export_split(load_dataset(dataset, root), "train", folder)
    if "sessions" in written:  # click logs: the clicks are the data; their judgments are the same clicks
        return ["--logs", str(written["sessions"])]
    return ["--judgments", str(written["judgments"])]


def score_dev(dataset: str, root: Path, out: Path, sample: int | None, *,
              work: Path | None = None) -> tuple[dict[str, object], float]:
    """The dev split through the models of the `dsr train` output `out` (its evaluation index in `work`)."""
    from dsr.eval.loaders import load_dataset
    from dsr.jobs.evaluate.runner import evaluate_dataset
    from dsr.settings import ConnectionSettings

    t0 = time.perf_counter()
    ranker = out / "ranker" if (out / "ranker" / "siamese" / "config.json").is_file() else None
    names = [p for row, p in ROWS.items() if row != "hybrid+rerank" or ranker is not None]
    result = evaluate_dataset(load_dataset(dataset, root), names, split="dev", sample=sample,
                              settings=ConnectionSettings(data_dir=work or out / "work"), model_dir=out / "dsr",
                              ranker_dir=ranker, skip_missing=True, progress=False, index_prefix="dsr-bench")
    row_of = {p: row for row, p in ROWS.items()}
    ndcg = {row_of[n]: r.means["ndcg10"] for n, r in result.results.items()}
    recall = {row_of[n]: r.means["recall100"] for n, r in result.results.items()}
    dev = {"queries": len(next(iter(result.results.values())).evaluation.queries) if result.results else 0,
           **figures(ndcg, recall), "skipped": result.skipped}
    return dev, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="crowdflower", help="homedepot, crowdflower or bestbuy-small")
    ap.add_argument("--datasets", default=os.environ.get("DSR_DATASETS", str(REPO.parent / "shared" / "datasets")))
    ap.add_argument("--quick", action="store_true",
                    help=f"a {QUICK_BUDGET} time budget and {QUICK_DEV_QUERIES} dev queries")
    ap.add_argument("--time-budget", default=None, help=f"dsr train --time-budget (default: none; {QUICK_BUDGET} "
                                                        "with --quick)")
    ap.add_argument("--threads", type=int, default=None, help="dsr train --threads (default: its own)")
    ap.add_argument("--out", type=Path, default=None, help="default: bench/out/train_recipe/DATASET")
    ap.add_argument("--keep", action="store_true", help="keep an earlier run's output (the run resumes)")
    ap.add_argument("--start-from", type=Path, default=None,
                    help="dsr train --start-from: an earlier run's output on another set (e.g. "
                         "bench/out/train_recipe/homedepot/run); its models are also scored on this set's dev "
                         "split as they are (zero-shot)")
    args = ap.parse_args()

    root = Path(args.datasets)
    out = args.out or REPO / "bench" / "out" / "train_recipe" / args.dataset
    if out.exists() and not args.keep:
        shutil.rmtree(out)
    budget = args.time_budget or (QUICK_BUDGET if args.quick else None)
    started = time.perf_counter()
    log(f"exporting the {args.dataset} train split")
    data = export_train(args.dataset, root, out / "input")
    command = [sys.executable, "-m", "dsr", "train", "--catalog", str(out / "input" / "catalog.jsonl"), *data,
               "--out", str(out / "run"), "--no-progress", *(["--time-budget", budget] if budget else []),
               *(["--threads", str(args.threads)] if args.threads else []),
               *(["--start-from", str(args.start_from)] if args.start_from else [])]
    log("running " + " ".join(command[2:]))
    t0 = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=sys.stderr)
    train_s = time.perf_counter() - t0
    report = json.loads((out / "run" / "report.json").read_text(encoding="utf-8"))
    table = report["validation"] or {"queries": 0, "pipelines": {}}
    validation = {"queries": table["queries"],
                  **figures({k: v["ndcg10"] for k, v in table["pipelines"].items()},
                            {k: v["recall100"] for k, v in table["pipelines"].items()})}
    log(f"scoring the {args.dataset} dev split with the trained models")
    dev, dev_s = score_dev(args.dataset, root, out / "run", QUICK_DEV_QUERIES if args.quick else None)
    zero_shot = None
    if args.start_from:
        log(f"scoring the {args.dataset} dev split with the models of {args.start_from} as they are")
        zero_shot, _ = score_dev(args.dataset, root, args.start_from, QUICK_DEV_QUERIES if args.quick else None,
                                 work=out / "zero-shot")
    recipe = report["recipe"]["retrieval"]
    ranker_stage = report["stages"].get("ranker") or {}
    result = {
        "bench": "train_recipe", "dataset": args.dataset, "quick": args.quick, "time_budget": budget,
        "device": report["device"], "threads": report["threads"],
        "recipe": {"backbone": recipe["backbone"], "backbone_epochs": recipe["backbone_epochs"],
                   "loss": recipe["loss"], "epochs": recipe["epochs"], "ranker_data": report["recipe"]["ranker_data"],
                   "validation": report["recipe"]["validation"]},
        "stopped_at_budget": [n for n, s in report["stages"].items() if s.get("stopped_at_budget")],
        "validation": validation, "recommended": report["recommended"], "dev": dev,
        "ranker": {"served": ranker_stage.get("served"), "validation_groups": ranker_stage.get("validation"),
                   "why": ranker_stage.get("why")},
        **({"start_from": str(args.start_from), "dev_zero_shot": zero_shot} if args.start_from else {}),
        "train_seconds": round(train_s, 1), "dev_seconds": round(dev_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
