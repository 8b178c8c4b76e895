"""One evaluation: build the requested pipelines on a dataset, run its judged queries, score them.

Pipelines that cannot be built are found before any indexing starts (`preflight`), so a missing model
directory fails in a second, not after ten minutes of embedding. With `skip_missing` they are listed in
the report as skipped, with the reason, instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsr.errors import UsageError
from dsr.eval.dataset import EvalDataset
from dsr.eval.metrics import Comparison, Evaluation, bootstrap_ci, compare_runs, evaluate_run
from dsr.jobs.evaluate.pipelines import REGISTRY, EvalContext, PipelineUnavailable, RunDict, is_model_dir
from dsr.settings import ConnectionSettings

BASELINE = "bm25"
QUICK_QUERIES = 200


@dataclass(frozen=True)
class PipelineResult:
    name: str
    label: str
    evaluation: Evaluation
    run: RunDict
    prepare_s: float  # building this pipeline (after the shared setup): models, sidecar, probes
    query_s: float

    @property
    def means(self) -> dict[str, float]:
        return self.evaluation.means

    @property
    def ms_per_query(self) -> float:
        n = max(1, len(self.run))
        return 1000.0 * self.query_s / n

    def ndcg_ci(self) -> tuple[float, float]:
        return bootstrap_ci(self.evaluation.per_query["ndcg10"])


@dataclass
class SplitResult:
    """Everything measured for one dataset split: per pipeline results, skips, paired tests."""

    dataset: str
    split: str
    n_queries: int
    results: dict[str, PipelineResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    judgments: dict[str, dict[str, int]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    setup_s: float = 0.0  # item vectors + evaluation index, shared by the pipelines
    sampled: bool = False




def preflight(names: list[str], ctx: EvalContext) -> dict[str, str]:
    """Why each pipeline that cannot run here cannot (cheap checks only: the catalog, model dirs)."""
    missing: dict[str, str] = {}
    data_dir = Path(ctx.settings.data_dir)
    for name in names:
        needs: list[str] = []
        if not ctx.dataset.has_catalog:
            missing[name] = f"dataset {ctx.dataset.name!r} ships no product text: nothing to retrieve"
            continue
        if name in ("dsr", "hybrid-rrf", "hybrid-linear", "hybrid+rerank"):
            model = ctx.model_dir or data_dir / "models" / ctx.dataset.name / "retrieval"
            if not is_model_dir(model):
                needs.append(f"a trained two-tower model (--model DIR; none at {model})")
        if name == "hybrid+rerank":
            ranker = ctx.ranker_dir or data_dir / "models" / ctx.dataset.name / "ranker"
            if not is_model_dir(ranker):
                needs.append(f"a trained ranker (--ranker DIR; none at {ranker})")
        if needs:
            missing[name] = "needs " + "; ".join(needs)
    return missing


def evaluate_dataset(
    dataset: EvalDataset,
    pipelines: list[str],
    *,
    settings: ConnectionSettings,
    split: str = "dev",
    sample: int | None = None,
    k: int = 100,
    model_dir: Path | None = None,
    ranker_dir: Path | None = None,
    skip_missing: bool = False,
    reindex: bool = False,
    progress: bool = True,
    backend: Any = None,
    index_prefix: str = "dsr-eval",
) -> SplitResult:
    """Run each pipeline over the split's judged queries and score them against the judgments."""
    started = time.perf_counter()
    part = dataset.split(split).sample(sample)
    with_vectors = any(REGISTRY[n].needs_vectors for n in pipelines)
    ctx = EvalContext(
        dataset,
        settings,
        model_dir=model_dir,
        ranker_dir=ranker_dir,
        with_vectors=with_vectors,
        reindex=reindex,
        progress=progress,
        backend=backend,
        index_prefix=index_prefix,
    )
    result = SplitResult(
        dataset.name,
        split,
        len(part),
        judgments=dict(part.judgments),
        notes=list(dataset.notes),
        sampled=sample is not None and len(part) < len(dataset.split(split)),
    )
    missing = preflight(pipelines, ctx)
    if missing and not skip_missing:
        raise UsageError(
            "cannot run "
            + "; ".join(f"{n}: {why}" for n, why in missing.items())
            + " (or pass --skip-missing to leave them out of the report)"
        )
    result.skipped.update(missing)
    queries = part.queries
    if any(n not in missing for n in pipelines):
        # shared by every engine pipeline: item vectors (cached on disk) and the evaluation index
        t0 = time.perf_counter()
        _ = ctx.index
        result.setup_s = time.perf_counter() - t0
    for name in pipelines:
        if name in missing:
            continue
        t0 = time.perf_counter()
        try:
            pipeline = REGISTRY[name].build(ctx)
        except PipelineUnavailable as e:
            if not skip_missing:
                raise
            result.skipped[name] = str(e)
            continue
        t1 = time.perf_counter()
        run = pipeline.search(queries, k)
        t2 = time.perf_counter()
        evaluation = evaluate_run(part.judgments, run, name)
        result.results[name] = PipelineResult(name, pipeline.label, evaluation, run, t1 - t0, t2 - t1)
        close = getattr(pipeline, "close", None)
        if callable(close):
            close()
    if dataset.has_catalog and result.results:
        result.titles = ctx.titles
    result.notes.extend(n for n in ctx.notes if n not in result.notes)
    if BASELINE in result.results and len(result.results) > 1:
        result.comparisons = compare_runs(
            part.judgments, {n: r.run for n, r in result.results.items()}, baseline=BASELINE
        )
    result.seconds = time.perf_counter() - started
    return result
