"""The report writer on a tiny hand-made run: report.json shape, markdown, per-query tsv, charts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsr.eval.metrics import compare_runs, evaluate_run
from dsr.jobs.evaluate.report import losses_vs_bm25, markdown_table, write_report
from dsr.jobs.evaluate.runner import PipelineResult, SplitResult

JUDGMENTS = {"red shoe": {"a": 2, "b": 1}, "blue hat": {"c": 1}, "green bag": {"d": 1}}
RUNS = {
    "bm25": {"red shoe": {"a": 2.0, "x": 1.0}, "blue hat": {"c": 1.0}, "green bag": {"y": 1.0}},
    "dsr": {"red shoe": {"x": 2.0, "a": 1.0}, "blue hat": {"c": 1.0}, "green bag": {"d": 1.0}},
}


def tiny_result() -> SplitResult:
    res = SplitResult(
        "tiny",
        "dev",
        len(JUDGMENTS),
        judgments=JUDGMENTS,
        titles={"a": "Red Shoe", "x": "Shoe Horn", "c": "Blue Hat", "d": "Green Bag"},
    )
    for name, run in RUNS.items():
        res.results[name] = PipelineResult(
            name, name.upper(), evaluate_run(JUDGMENTS, run, name), run, 0.5, 0.01
        )
    res.comparisons = compare_runs(JUDGMENTS, RUNS, baseline="bm25")
    res.skipped["hybrid+rerank"] = "needs a trained ranker"
    return res


def test_report_json_has_the_documented_shape_and_merges(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"other": {"dev": {"bm25": {"ndcg10": 0.1}}}}))
    paths = write_report([tiny_result()], tmp_path)
    data = json.loads(paths["json"].read_text())
    assert set(data) == {"other", "tiny"}
    assert set(data["tiny"]["dev"]) == {"bm25", "dsr"}
    assert set(data["tiny"]["dev"]["dsr"]) == {"ndcg10", "recall100", "mrr10"}
    assert data["tiny"]["dev"]["bm25"]["mrr10"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-6)


def test_report_writes_markdown_details_per_query_and_charts(tmp_path: Path) -> None:
    paths = write_report([tiny_result()], tmp_path)
    md = paths["markdown"].read_text()
    assert "| tiny | dev | 3 | dsr |" in md and "skipped: needs a trained ranker" in md
    assert "where dsr loses to bm25" in md and "red shoe" in md
    for name in ("tiny-dev-ndcg10.png", "tiny-dev-wins-vs-bm25.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tsv = (tmp_path / "tiny-dev-per-query.tsv").read_text().splitlines()
    assert tsv[0].startswith("query\tbm25:ndcg10") and len(tsv) == 4
    details = json.loads(paths["details"].read_text())["tiny"]["dev"]
    assert details["skipped"] == {"hybrid+rerank": "needs a trained ranker"}
    assert details["vs_bm25"][0]["wins"] == 1 and details["vs_bm25"][0]["losses"] == 1


def test_losses_list_the_queries_where_dsr_is_below_bm25_with_titles() -> None:
    focus, rows = losses_vs_bm25(tiny_result())
    assert focus == "dsr"
    assert [r["query"] for r in rows] == ["red shoe"]
    assert rows[0]["bm25_top1"] == "Red Shoe" and rows[0]["dsr_top1"] == "Shoe Horn"


def test_markdown_table_shows_ratio_to_bm25() -> None:
    table = markdown_table([tiny_result()])
    bm25_row = next(line for line in table.splitlines() if "| bm25 |" in line)
    assert "| 1.000 |" in bm25_row
