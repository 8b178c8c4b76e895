"""The pipeline registry's pure parts: rank-preserving runs, RRF, names, and missing-piece errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr.errors import UsageError
from dsr.eval.dataset import EvalDataset, Split
from dsr.jobs.evaluate.pipelines import REGISTRY, EvalContext, parse_pipelines, ranked_run, rrf_lists
from dsr.jobs.evaluate.runner import evaluate_dataset, preflight
from dsr.settings import ConnectionSettings


def test_ranked_run_keeps_the_pipeline_order_and_drops_repeats() -> None:
    run = ranked_run(["b", "a", "b", "c"])
    assert sorted(run, key=lambda d: -run[d]) == ["b", "a", "c"]


def test_rrf_lists_follows_the_formula() -> None:
    # k=60: a = 1/61 + 1/62, b = 1/62 + 1/61, c = 1/63, d = 1/63 -> ties keep first-seen order
    fused = rrf_lists([["a", "b", "c"], ["b", "a", "d"]])
    assert set(fused[:2]) == {"a", "b"} and set(fused[2:]) == {"c", "d"}
    assert rrf_lists([["x"], ["y", "x"]])[0] == "x"


def test_parse_pipelines_rejects_unknown_names_listing_the_known_ones() -> None:
    assert parse_pipelines("bm25, knn-untuned,bm25") == ["bm25", "knn-untuned"]
    with pytest.raises(UsageError, match="hybrid\\+rerank"):
        parse_pipelines("bm25,nope")
    assert set(REGISTRY) == {
        "bm25",
        "knn-untuned",
        "engine-hybrid",
        "dsr",
        "hybrid-rrf",
        "hybrid-linear",
        "hybrid+rerank",
    }


def _dataset() -> EvalDataset:
    return EvalDataset("tiny", {"dev": Split({"q": {"a": 1}})}, lambda: iter([{"id": "a", "title": "A"}]))


def test_preflight_names_the_missing_model_directories(tmp_path: Path) -> None:
    ctx = EvalContext(_dataset(), ConnectionSettings(data_dir=tmp_path))
    missing = preflight(["dsr", "hybrid+rerank"], ctx)
    assert "trained two-tower model" in missing["dsr"] and str(tmp_path) in missing["dsr"]
    assert "trained ranker" in missing["hybrid+rerank"]


def test_missing_pipeline_fails_before_any_work_unless_skipped(tmp_path: Path) -> None:
    settings = ConnectionSettings(data_dir=tmp_path)
    with pytest.raises(UsageError, match="--model DIR"):
        evaluate_dataset(_dataset(), ["dsr"], settings=settings, progress=False)
    res = evaluate_dataset(_dataset(), ["dsr"], settings=settings, progress=False, skip_missing=True)
    assert "dsr" in res.skipped and not res.results


def test_a_set_without_product_text_skips_retrieval(tmp_path: Path) -> None:
    ds = EvalDataset("no-text", {"dev": Split({"q": {"a": 1}})}, None)
    res = evaluate_dataset(
        ds, ["bm25"], settings=ConnectionSettings(data_dir=tmp_path), skip_missing=True, progress=False
    )
    assert "no product text" in res.skipped["bm25"]
