"""`dsr train` end to end on a small synthetic shop: both models, the validation table, report.json,
and a second run that resumes instead of training again."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dsr.cli import cli
from dsr.encoders.embed_cache import model_dir_key
from dsr.encoders.model import TwoTowerModel
from dsr.encoders.resolve import resolve_encoder
from dsr.logs.jsonl import write_sessions_jsonl
from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.reranker import load_reranker
from dsr.reranker.base import Candidate

PIPELINES = ("bm25", "dsr", "hybrid", "hybrid+rerank")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    world = make_world(n_items=300, n_queries=30, n_users=20, seed=9)
    catalog = folder / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in world.catalog))
    logs = folder / "logs.jsonl"
    write_sessions_jsonl(simulate_sessions(world, 600, seed=9), logs)
    return world, catalog, logs


def _train(catalog, logs, out, *extra: str):
    return CliRunner().invoke(cli, ["train", "--catalog", str(catalog), "--logs", str(logs), "--out", str(out),
                                    "--backbone", "none", "--no-progress", *extra])


@pytest.fixture(scope="module")
def trained(shop, tmp_path_factory):
    _, catalog, logs = shop
    out = tmp_path_factory.mktemp("train") / "out"
    first = _train(catalog, logs, out)
    assert first.exit_code == 0, first.output
    return out, first


def test_the_run_writes_both_models_and_they_load(shop, trained):
    world, _, _ = shop
    out, _ = trained
    encoder = resolve_encoder(out / "dsr")
    assert isinstance(encoder, TwoTowerModel)
    vectors = encoder.encode_queries([q.text for q in world.queries[:3]])
    assert vectors.shape == (3, encoder.dim) and np.isfinite(vectors).all()
    ranker = load_reranker(out / "ranker", catalog=world.items_by_id)
    candidates = [Candidate(item=row, fused_rank=i) for i, row in enumerate(world.catalog[:20])]
    scores = ranker.score(world.queries[0].text, candidates)
    assert scores.shape == (20,) and np.isfinite(scores).all()


def test_the_run_ends_with_the_table_and_the_pipeline_to_serve(trained):
    _, result = trained
    table = result.stdout
    for row in ("BM25", "DSR", "hybrid", "hybrid + re-rank"):
        assert f"\n  {row} " in table
    assert "NDCG@10" in table and "recall@100" in table
    assert "recommended: " in table and "serve it: " in table
    assert "recipe:" in result.stderr and "retrieval: --backbone none was asked for" in result.stderr


def test_report_json_holds_the_four_pipelines_and_the_recipe(trained):
    out, _ = trained
    report = json.loads((out / "report.json").read_text())
    figures = report["validation"]["pipelines"]
    assert set(figures) == set(PIPELINES)
    for name in PIPELINES:
        assert 0.0 <= figures[name]["ndcg10"] <= 1.0 and 0.0 <= figures[name]["recall100"] <= 1.0
    best = max(PIPELINES, key=lambda n: figures[n]["ndcg10"])
    assert figures[report["recommended"]]["ndcg10"] == figures[best]["ndcg10"]
    assert report["validation"]["queries"] > 0
    assert report["recipe"]["validation"] == "time"  # logs alone, with times
    assert report["recipe"]["reasons"]["retrieval"]
    assert {s["status"] for s in report["stages"].values()} == {"trained"}


def test_a_second_run_resumes_every_finished_stage(shop, trained):
    _, catalog, logs = shop
    out, first = trained
    keys = (model_dir_key(out / "dsr"), model_dir_key(out / "ranker"))
    again = _train(catalog, logs, out)
    assert again.exit_code == 0, again.output
    for stage in ("retrieval", "ranker", "validation"):
        assert f"[{stage}] resumed" in again.stderr
    assert "epoch 1" not in again.stderr  # nothing trained
    assert (model_dir_key(out / "dsr"), model_dir_key(out / "ranker")) == keys
    assert again.stdout.split("\n", 1)[1] == first.stdout  # the same table, after the resume line
    report = json.loads((out / "report.json").read_text())
    assert {s["status"] for s in report["stages"].values()} == {"resumed"}


def test_a_changed_setting_runs_its_stage_and_the_ones_after_it_again(shop, trained):
    _, catalog, logs = shop
    out, _ = trained
    changed = _train(catalog, logs, out, "--seed", "1")
    assert changed.exit_code == 0, changed.output
    assert "[retrieval] resumed" not in changed.stderr and "[ranker] resumed" not in changed.stderr
    assert "[validation] resumed" not in changed.stderr


def test_a_run_can_start_from_another_runs_models_and_refuses_a_folder_without_any(shop, trained, tmp_path):
    _, catalog, logs = shop
    earlier, _ = trained
    result = _train(catalog, logs, tmp_path / "next", "--start-from", str(earlier))
    assert result.exit_code == 0, result.output
    assert f"starting from {earlier}: backbone none (stock MiniLM), ranker {earlier / 'ranker'}" in result.stderr
    assert f"the rankers go on from {earlier / 'ranker'}" in result.stderr
    report = json.loads((tmp_path / "next" / "report.json").read_text())
    assert report["stages"]["ranker"]["status"] == "trained"
    assert report["stages"]["ranker"]["served"] in ("siamese", "xgboost")
    assert "validation" in report["stages"]["ranker"] and "first_stage" in report["stages"]["ranker"]["validation"]
    (tmp_path / "empty").mkdir()
    refused = _train(catalog, logs, tmp_path / "other", "--start-from", str(tmp_path / "empty"))
    assert refused.exit_code != 0 and "nothing to start from" in str(refused.exception)
    assert "catalog:" not in refused.stderr  # refused before reading anything
