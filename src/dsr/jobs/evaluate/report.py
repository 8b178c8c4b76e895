"""The comparison report: a markdown table, `report.json`, per-query results, PNG charts, and the queries
where the dsr side loses to BM25.

`report.json` has exactly the shape `{dataset: {split: {pipeline: {"ndcg10", "recall100", "mrr10"}}}}`
so scripts can read it without knowing anything else; an existing file in the output directory is
merged into (one directory can collect several datasets). Everything else (run times, confidence
intervals, paired tests, skipped pipelines and why, labels of how a pipeline actually ran) goes to
`details.json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dsr.jobs.evaluate.runner import BASELINE, SplitResult

FOCUS_ORDER = ("hybrid+rerank", "dsr", "hybrid-rrf", "hybrid-linear", "engine-hybrid", "knn-untuned")
"""Which pipeline the "where it loses to BM25" section is about: the most complete dsr pipeline run."""


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def focus_pipeline(result: SplitResult) -> str | None:
    return next((n for n in FOCUS_ORDER if n in result.results), None)


def markdown_table(results: Sequence[SplitResult]) -> str:
    """One row per dataset, split and pipeline: metrics, the ratio to BM25, the paired test, timings."""
    lines = [
        "| dataset | split | queries | pipeline | NDCG@10 (95% CI) | recall@100 | MRR@10 | ×bm25 NDCG | "
        "p vs bm25 | W/T/L vs bm25 | prepare s | ms/query |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for res in results:
        base = res.results.get(BASELINE)
        tests = {c.a: c for c in res.comparisons}
        for name, r in res.results.items():
            m = r.means
            lo, hi = r.ndcg_ci()
            ratio = f"{m['ndcg10'] / base.means['ndcg10']:.3f}" if base and base.means["ndcg10"] > 0 else "–"
            test = tests.get(name)
            p = f"{test.p_value:.3g}" if test else "–"
            wtl = f"{test.wins}/{test.ties}/{test.losses}" if test else "–"
            lines.append(
                f"| {res.dataset} | {res.split} | {len(r.evaluation.queries)} | {name} | "
                f"{_fmt(m['ndcg10'])} ({lo:.3f}–{hi:.3f}) | {_fmt(m['recall100'])} | {_fmt(m['mrr10'])} | "
                f"{ratio} | {p} | {wtl} | {r.prepare_s:.1f} | {r.ms_per_query:.1f} |"
            )
        for name, why in res.skipped.items():
            lines.append(f"| {res.dataset} | {res.split} | – | {name} | skipped: {why} | | | | | | | |")
    return "\n".join(lines)


def losses_vs_bm25(result: SplitResult, *, limit: int = 10) -> tuple[str | None, list[dict[str, Any]]]:
    """The queries where the focus pipeline's NDCG@10 is furthest below BM25's, with what each returned."""
    focus = focus_pipeline(result)
    if focus is None or BASELINE not in result.results:
        return focus, []
    base = result.results[BASELINE]
    other = result.results[focus]
    b, o = base.evaluation.query_scores(), other.evaluation.query_scores()
    worst = sorted((q for q in b if b[q] > o.get(q, 0.0)), key=lambda q: (o.get(q, 0.0) - b[q], q))[:limit]
    titles = result.titles
    rows = []
    for q in worst:
        judged = result.judgments.get(q, {})
        best = max(judged, key=lambda d: (judged[d], d)) if judged else None
        top_b = next(iter(base.run.get(q, {})), None)
        top_o = next(iter(other.run.get(q, {})), None)
        rows.append(
            {
                "query": q,
                "ndcg10_bm25": round(b[q], 4),
                f"ndcg10_{focus}": round(o.get(q, 0.0), 4),
                "best_judged": titles.get(best, best) if best else None,
                "bm25_top1": titles.get(top_b, top_b) if top_b else None,
                f"{focus}_top1": titles.get(top_o, top_o) if top_o else None,
            }
        )
    return focus, rows


def losses_markdown(result: SplitResult) -> str:
    focus, rows = losses_vs_bm25(result)
    if not focus or BASELINE not in result.results:
        return ""
    b = result.results[BASELINE].evaluation.query_scores()
    o = result.results[focus].evaluation.query_scores()
    n_loss = sum(1 for q in b if o.get(q, 0.0) < b[q])
    out = [
        f"### {result.dataset} {result.split}: where {focus} loses to bm25 "
        f"({n_loss} of {len(b)} queries lower NDCG@10)",
        "",
    ]
    if not rows:
        return "\n".join([*out, "none", ""])
    out += [
        f"| query | bm25 | {focus} | best judged item | bm25 top 1 | {focus} top 1 |",
        "|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["query"],
            f"{r['ndcg10_bm25']:.3f}",
            f"{r[f'ndcg10_{focus}']:.3f}",
            r["best_judged"] or "",
            r["bm25_top1"] or "",
            r[f"{focus}_top1"] or "",
        ]
        out.append("| " + " | ".join(str(c).replace("|", "/")[:80] for c in cells) + " |")
    return "\n".join([*out, ""])


def report_json(results: Sequence[SplitResult], existing: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = dict(existing or {})
    for res in results:
        split = data.setdefault(res.dataset, {}).setdefault(res.split, {})
        for name, r in res.results.items():
            split[name] = {k: round(v, 6) for k, v in r.means.items()}
    return data


def details_json(results: Sequence[SplitResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for res in results:
        entry: dict[str, Any] = {
            "queries": res.n_queries,
            "sampled": res.sampled,
            "seconds": round(res.seconds, 2),
            "setup_s": round(res.setup_s, 2),
            "notes": res.notes,
            "skipped": res.skipped,
            "pipelines": {},
            "vs_bm25": [
                {
                    "pipeline": c.a,
                    "metric": c.metric,
                    "mean": c.mean_a,
                    "bm25": c.mean_b,
                    "p_value": c.p_value,
                    "wins": c.wins,
                    "ties": c.ties,
                    "losses": c.losses,
                }
                for c in res.comparisons
            ],
        }
        for name, r in res.results.items():
            lo, hi = r.ndcg_ci()
            entry["pipelines"][name] = {
                "label": r.label,
                **{k: round(v, 6) for k, v in r.means.items()},
                "ndcg10_ci95": [round(lo, 6), round(hi, 6)],
                "evaluated_queries": len(r.evaluation.queries),
                "prepare_s": round(r.prepare_s, 2),
                "query_s": round(r.query_s, 2),
                "ms_per_query": round(r.ms_per_query, 2),
            }
        focus, rows = losses_vs_bm25(res)
        if focus:
            entry["losses_vs_bm25"] = {"pipeline": focus, "examples": rows}
        out.setdefault(res.dataset, {})[res.split] = entry
    return out


def _plots(res: SplitResult, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    names = list(res.results)
    if not names:
        return written
    means = [res.results[n].means["ndcg10"] for n in names]
    cis = [res.results[n].ndcg_ci() for n in names]
    err = [
        [m - lo for m, (lo, _) in zip(means, cis, strict=True)],
        [hi - m for m, (_, hi) in zip(means, cis, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    ax.bar(names, means, yerr=err, capsize=5, color="#4c72b0")
    ax.set_ylabel("NDCG@10 (95% bootstrap CI)")
    ax.set_title(f"{res.dataset} {res.split}: NDCG@10 per pipeline ({res.n_queries} queries)")
    ax.set_ylim(0, max(1e-3, max(hi for _, hi in cis)) * 1.15)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    path = out_dir / f"{res.dataset}-{res.split}-ndcg10.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    if res.comparisons:
        fig, ax = plt.subplots(figsize=(7, 0.6 * len(res.comparisons) + 1.5))
        labels = [c.a for c in res.comparisons]
        wins = [c.wins for c in res.comparisons]
        ties = [c.ties for c in res.comparisons]
        losses = [c.losses for c in res.comparisons]
        ax.barh(labels, wins, color="#55a868", label="wins")
        ax.barh(labels, ties, left=wins, color="#cccccc", label="ties")
        ax.barh(
            labels,
            losses,
            left=[w + t for w, t in zip(wins, ties, strict=True)],
            color="#c44e52",
            label="losses",
        )
        ax.set_xlabel("queries (NDCG@10 vs bm25)")
        ax.set_title(f"{res.dataset} {res.split}: per-query wins / ties / losses vs bm25")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{res.dataset}-{res.split}-wins-vs-bm25.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_report(results: Sequence[SplitResult], out_dir: Path) -> dict[str, Path]:
    """Write report.md, report.json (merged), details.json, per-query tsv and the charts; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    report_path = out_dir / "report.json"
    existing = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else None
    report_path.write_text(json.dumps(report_json(results, existing), indent=2) + "\n", encoding="utf-8")
    paths["json"] = report_path

    details_path = out_dir / "details.json"
    old = json.loads(details_path.read_text(encoding="utf-8")) if details_path.exists() else {}
    for dataset, splits in details_json(results).items():
        old.setdefault(dataset, {}).update(splits)
    details_path.write_text(json.dumps(old, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["details"] = details_path

    for res in results:
        tsv = out_dir / f"{res.dataset}-{res.split}-per-query.tsv"
        names = list(res.results)
        with open(tsv, "w", encoding="utf-8") as fh:
            fh.write("query\t" + "\t".join(f"{n}:{m}" for n in names for m in ("ndcg10", "recall100", "mrr10")) + "\n")
            per = {
                n: {m: res.results[n].evaluation.per_query[m] for m in ("ndcg10", "recall100", "mrr10")} for n in names
            }
            queries = res.results[names[0]].evaluation.queries if names else ()
            for i, q in enumerate(queries):
                fh.write(
                    q.replace("\t", " ")
                    + "\t"
                    + "\t".join(f"{per[n][m][i]:.4f}" for n in names for m in ("ndcg10", "recall100", "mrr10"))
                    + "\n"
                )
        paths[f"{res.dataset}-{res.split}-per-query"] = tsv
        for p in _plots(res, out_dir):
            paths[p.stem] = p

    md = ["# dsr eval", "", markdown_table(results), ""]
    for res in results:
        md += [
            f"{res.dataset} {res.split}: {res.seconds:.1f} s in all; shared setup (item vectors, evaluation "
            f"index) {res.setup_s:.1f} s",
            "",
        ]
        if res.notes:
            md += [f"Notes ({res.dataset} {res.split}):", *[f"- {n}" for n in res.notes], ""]
        labels = [f"- {n}: {r.label}" for n, r in res.results.items()]
        if labels:
            md += [f"Pipelines as run ({res.dataset} {res.split}):", *labels, ""]
        loss = losses_markdown(res)
        if loss:
            md += [loss]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    paths["markdown"] = md_path
    return paths
