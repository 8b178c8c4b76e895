"""Relevance benchmark: `dsr eval` pipelines on the real datasets' dev splits, BM25 as the same-run baseline.

    .venv/bin/python bench/eval_report.py --engine URL [--datasets homedepot,crowdflower,bestbuy-small]
        [--pipelines bm25,knn-untuned,engine-hybrid,...] [--quick] [--out DIR] [--skip-missing]

Prints the markdown table, then ONE JSON line: report.json's shape plus, per dataset, each pipeline's
NDCG@10 ratio to BM25 and the run time in seconds. Targets: hybrid+rerank NDCG@10 >= 1.15x bm25 and above
engine-hybrid on every dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from dsr.eval.loaders import load_dataset
    from dsr.jobs.evaluate.pipelines import parse_pipelines
    from dsr.jobs.evaluate.report import markdown_table, report_json, write_report
    from dsr.jobs.evaluate.runner import QUICK_QUERIES, evaluate_dataset
    from dsr.settings import ConnectionSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default=None, help="cluster URL, or omit for the embedded backend")
    ap.add_argument("--datasets", default="crowdflower,bestbuy-small,homedepot")
    ap.add_argument("--pipelines", default="bm25,knn-untuned,engine-hybrid")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_QUERIES} queries per dataset")
    ap.add_argument("--out", default="bench-out/eval")
    ap.add_argument("--data-dir", default=".dsr")
    ap.add_argument("--skip-missing", action="store_true")
    args = ap.parse_args()

    settings = ConnectionSettings(engine_url=args.engine, data_dir=Path(args.data_dir))
    names = parse_pipelines(args.pipelines)
    results, seconds = [], {}
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        t0 = time.perf_counter()
        results.append(
            evaluate_dataset(
                load_dataset(name),
                names,
                settings=settings,
                sample=QUICK_QUERIES if args.quick else None,
                skip_missing=args.skip_missing,
            )
        )
        seconds[name] = round(time.perf_counter() - t0, 1)
    write_report(results, Path(args.out))
    print(markdown_table(results))
    out = report_json(results)
    for res in results:
        base = res.results.get("bm25")
        out[res.dataset]["ratio_ndcg10_vs_bm25"] = {
            n: round(r.means["ndcg10"] / base.means["ndcg10"], 4)
            for n, r in res.results.items()
            if base and base.means["ndcg10"] > 0
        }
        out[res.dataset]["seconds"] = seconds[res.dataset]
        out[res.dataset]["skipped"] = res.skipped
    print(json.dumps(out))


if __name__ == "__main__":
    main()
