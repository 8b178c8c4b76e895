"""Training the ranker from graded judgments: candidates come from the product's own first stage."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dsr.cli import cli
from dsr.jobs.judged_candidates import judged_groups
from dsr.logs.synthetic import make_world
from dsr.reranker.siamese import SiameseRanker


@pytest.fixture(scope="module")
def world():
    return make_world(n_items=150, n_queries=12, n_users=5, seed=5)


def _judgments(world) -> dict[str, dict[str, float]]:
    """Grades 1..4 (1 = not relevant) for the first relevant items and a few irrelevant ones."""
    out = {}
    for q in world.queries:
        grades = {i: 1.0 + g for i, g in list(q.relevant.items())[:6]}
        grades.update({it["id"]: 1.0 for it in world.catalog[:3] if it["id"] not in q.relevant})
        out[q.text] = grades
    return out


def test_judged_groups_hold_the_first_stage_candidates_labelled_by_grade(world):
    catalog = {it["id"]: it for it in world.catalog}
    judgments = _judgments(world)
    groups, _ = judged_groups(judgments, catalog, top_k=20, progress=False)
    assert groups and len(groups) <= len(judgments)
    for g in groups:
        assert len(g.candidates) <= 20
        assert [c.fused_rank for c in g.candidates] == list(range(len(g.candidates)))  # the fused order
        assert all(c.bm25 is not None for c in g.candidates if c.fused_rank == 0)  # term side scored
        grades = judgments[g.query]
        for c, label in zip(g.candidates, g.labels, strict=True):
            assert label == grades.get(c.item["id"], 1.0)  # unjudged = the scale's lowest grade
        assert all(g.labels[a] > g.labels[b] for a, b, _ in g.pairs)


def test_train_ranker_from_judgments_alone(world, tmp_path):
    with open(tmp_path / "catalog.jsonl", "w") as fh:
        for row in world.catalog:
            fh.write(json.dumps(row) + "\n")
    with open(tmp_path / "judgments.tsv", "w") as fh:
        fh.write("query\titem_id\tgrade\n")
        for q, grades in _judgments(world).items():
            for item, grade in grades.items():
                fh.write(f"{q}\t{item}\t{grade}\n")
        fh.write("drill\tghost-item\t3\n")  # an unknown id is reported, not silently used
    out = tmp_path / "ranker"
    result = CliRunner().invoke(cli, [
        "train", "ranker", "--judgments", str(tmp_path / "judgments.tsv"), "--catalog",
        str(tmp_path / "catalog.jsonl"), "--out", str(out), "--epochs", "2", "--no-progress", "--no-xgboost"])
    assert result.exit_code == 0, result.output
    assert "unknown item id 'ghost-item'" in result.output
    ranker = SiameseRanker.load(out / "siamese")
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["pairs"]["pairs"] > 0 and summary["train_sessions"] > 0
    assert ranker.extractor.config.numeric


def test_train_ranker_needs_logs_or_judgments(tmp_path):
    (tmp_path / "catalog.jsonl").write_text(json.dumps({"id": "1", "title": "drill"}) + "\n")
    result = CliRunner().invoke(cli, ["train", "ranker", "--catalog", str(tmp_path / "catalog.jsonl"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "give --logs and/or --judgments" in str(result.exception)
