"""The table `dsr train` ends with: BM25, DSR, hybrid and hybrid + re-rank on the held-out validation part.

The figures come from `dsr eval`'s own runner (`dsr.jobs.evaluate.runner.evaluate_dataset`) over the
same pipeline code: BM25 on the embedded index (or the cluster given), the trained towers over an
exact FAISS sidecar, the product's `HybridSearcher` with RRF, and the same with the trained ranker
over the top 100. The pipeline to serve is the best by validation NDCG@10; a tie goes to the cheaper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsr.catalog import Item
from dsr.eval.dataset import EvalDataset, Judgments, Split
from dsr.settings import ConnectionSettings

PIPELINES: dict[str, str] = {"bm25": "bm25", "dsr": "dsr", "hybrid": "hybrid-rrf", "hybrid+rerank": "hybrid+rerank"}
"""Table row -> the `dsr eval` pipeline it runs, cheapest first (a tie goes to the earlier row)."""
LABELS = {"bm25": "BM25", "dsr": "DSR", "hybrid": "hybrid", "hybrid+rerank": "hybrid + re-rank"}
SPLIT = "validation"


@dataclass(frozen=True)
class PipelineFigures:
    ndcg10: float
    recall100: float
    mrr10: float
    ms_per_query: float


@dataclass(frozen=True)
class ValidationTable:
    """Validation figures per pipeline, the pipelines that could not run and why, paired p-values vs BM25."""

    queries: int
    figures: Mapping[str, PipelineFigures]
    skipped: Mapping[str, str] = field(default_factory=dict)
    p_vs_bm25: Mapping[str, float] = field(default_factory=dict)  # NDCG@10, paired t-test

    def recommended(self) -> tuple[str, str]:
        """The pipeline to serve and why: the best validation NDCG@10, the cheaper one on a tie."""
        if not self.figures:
            return "bm25", "no pipeline could be measured; BM25 needs no model"
        best = max(self.figures, key=lambda n: (round(self.figures[n].ndcg10, 4), -list(PIPELINES).index(n)))
        why = f"the best validation NDCG@10 ({self.figures[best].ndcg10:.4f}"
        if best != "bm25" and "bm25" in self.figures:
            base = self.figures["bm25"].ndcg10
            ratio = f", {self.figures[best].ndcg10 / base:.3f}x BM25" if base > 0 else ""
            p = self.p_vs_bm25.get(best)
            why += ratio + (f", paired p = {p:.3g} over {self.queries} queries" if p is not None else "")
        return best, why + ")"

    def to_dict(self) -> dict[str, Any]:
        name, why = self.recommended()
        return {"queries": self.queries, "pipelines": {n: asdict(f) for n, f in self.figures.items()},
                "skipped": dict(self.skipped), "p_vs_bm25": dict(self.p_vs_bm25),
                "recommended": name, "recommended_why": why}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationTable:
        return cls(queries=int(data["queries"]),
                   figures={n: PipelineFigures(**f) for n, f in dict(data.get("pipelines") or {}).items()},
                   skipped=dict(data.get("skipped") or {}), p_vs_bm25=dict(data.get("p_vs_bm25") or {}))


def measure(validation: Judgments, catalog: Sequence[Item], *, model_dir: Path, ranker_dir: Path | None,
            settings: ConnectionSettings, progress: bool = True, backend: Any = None) -> ValidationTable:
    """Run the four pipelines over the validation queries with `dsr eval`'s runner and metrics."""
    from dsr.jobs.evaluate.runner import evaluate_dataset

    items = list(catalog)
    dataset = EvalDataset("train-validation", {SPLIT: Split(dict(validation))}, lambda: iter(items),
                          description="the part `dsr train` held out")
    names = [PIPELINES[n] for n in PIPELINES if n != "hybrid+rerank" or ranker_dir is not None]
    own = backend is None
    if own:
        from dsr.backends import connect

        backend = connect(settings)
    try:
        result = evaluate_dataset(dataset, names, settings=settings, split=SPLIT, model_dir=model_dir,
                                  ranker_dir=ranker_dir, skip_missing=True, progress=progress, backend=backend,
                                  index_prefix="dsr-train")
    finally:
        if own:
            backend.close()
    row_of = {v: k for k, v in PIPELINES.items()}
    figures = {row_of[n]: PipelineFigures(ndcg10=float(r.means["ndcg10"]), recall100=float(r.means["recall100"]),
                                          mrr10=float(r.means["mrr10"]), ms_per_query=float(r.ms_per_query))
               for n, r in result.results.items()}
    skipped = {row_of[n]: why for n, why in result.skipped.items()}
    if ranker_dir is None:
        skipped["hybrid+rerank"] = "no ranker was trained"
    p_values = {row_of[c.a]: float(c.p_value) for c in result.comparisons
                if c.b == PIPELINES["bm25"] and c.metric == "ndcg10" and c.a in row_of}
    n = len(next(iter(result.results.values())).evaluation.queries) if result.results else 0
    return ValidationTable(queries=n, figures={k: figures[k] for k in PIPELINES if k in figures},
                           skipped=skipped, p_vs_bm25=p_values)


def format_table(table: ValidationTable) -> str:
    """The table as aligned text, one row per pipeline, with the ratio to BM25's NDCG@10."""
    base = table.figures.get("bm25")
    lines = [f"validation: {table.queries} held-out queries",
             f"  {'pipeline':<18} {'NDCG@10':>8} {'recall@100':>10} {'vs BM25':>8} {'ms/query':>9}"]
    for name in PIPELINES:
        f = table.figures.get(name)
        if f is None:
            lines.append(f"  {LABELS[name]:<18} skipped: {table.skipped.get(name, 'not run')}")
            continue
        ratio = f"{f.ndcg10 / base.ndcg10:.3f}x" if base is not None and base.ndcg10 > 0 else "-"
        lines.append(f"  {LABELS[name]:<18} {f.ndcg10:>8.4f} {f.recall100:>10.4f} {ratio:>8} {f.ms_per_query:>9.1f}")
    name, why = table.recommended()
    lines.append(f"recommended: {LABELS[name]}: {why}")
    return "\n".join(lines)


def serve_hint(pipeline: str, model_dir: Path, ranker_dir: Path) -> str:
    """How to serve the recommended pipeline with the models just written."""
    if pipeline == "bm25":
        return "keep the cluster's own search: no model beat BM25 on the validation queries"
    ingest = f"dsr ingest CATALOG --index INDEX --model {model_dir}"
    serve = f"dsr serve --index INDEX --model {model_dir}"
    if pipeline == "hybrid+rerank":
        serve += f" --ranker {ranker_dir}"
    return f"{ingest}; {serve}" + ("  (ext.dsr hybrid requests)" if pipeline != "dsr" else
                                   "  (ext.dsr requests with the vector side alone)")
