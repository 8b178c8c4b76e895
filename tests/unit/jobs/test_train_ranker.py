"""`dsr train ranker`: help, a tiny end-to-end run, and its reports of unusable sessions."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from dsr.cli import cli
from dsr.logs.jsonl import write_sessions_jsonl
from dsr.logs.records import Session
from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.reranker import load_reranker
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.xgb import XGBoostRanker


def test_train_ranker_help():
    result = CliRunner().invoke(cli, ["train", "ranker", "--help"])
    assert result.exit_code == 0
    assert "--logs" in result.output and "--catalog" in result.output and "--out" in result.output


def test_train_ranker_writes_both_models_and_reports_unusable_sessions(tmp_path):
    world = make_world(n_items=120, n_queries=15, n_users=10, seed=3)
    sessions = simulate_sessions(world, 300, seed=4)
    extra = [Session("bad-1", "drill", impressions=("ghost-1", world.catalog[0]["id"]), clicks=("ghost-1",)),
             Session("bad-2", "drill", impressions=(world.catalog[1]["id"],))]
    write_sessions_jsonl([*sessions, *extra], tmp_path / "logs.jsonl")
    with open(tmp_path / "catalog.jsonl", "w") as fh:
        for row in world.catalog:
            fh.write(json.dumps(row) + "\n")
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, [
        "train", "ranker", "--logs", str(tmp_path / "logs.jsonl"), "--catalog", str(tmp_path / "catalog.jsonl"),
        "--out", str(out), "--epochs", "2", "--no-progress", "--seed", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["pairs"]["unknown_item_ids"] == 1
    assert summary["pairs"]["sessions_without_pairs"]["single impression"] == 2
    assert summary["train_sessions"] > 0 and summary["validation_sessions"] > 0
    served = json.loads((out / "served.json").read_text())
    assert served["served"] == summary["served"] and served["served"] in ("siamese", "xgboost")
    figures = served["figures"]
    assert set(figures) == {"first_stage", "siamese", "xgboost"}  # no DSR similarity in logged sessions
    best = max(("siamese", "xgboost"), key=lambda n: (figures[n]["ndcg@10"], figures[n]["session_auc"]))
    assert served["served"] == best
    assert isinstance(load_reranker(out), SiameseRanker if best == "siamese" else XGBoostRanker)
    ranker = load_reranker(out, catalog=world.items_by_id, prefer="siamese")
    assert isinstance(ranker, SiameseRanker)
    assert isinstance(load_reranker(out, prefer="xgboost"), XGBoostRanker)
    assert (out / "xgboost" / "xgboost.json").is_file()
    from dsr.reranker.base import Candidate
    cands = [Candidate(item=row, fused_rank=i) for i, row in enumerate(world.catalog[:100])]
    scores = ranker.score(world.queries[0].text, cands, {"user_id": "u00000"})
    assert scores.shape == (100,) and np.isfinite(scores).all()


def test_a_click_log_without_impressions_trains_from_its_sessions_through_the_first_stage(tmp_path):
    import dataclasses

    world = make_world(n_items=120, n_queries=15, n_users=10, seed=3)
    clicked = [s for s in simulate_sessions(world, 200, seed=4) if s.clicks]
    bare = [dataclasses.replace(s, impressions=()) for s in clicked]  # a click log: no impressions
    write_sessions_jsonl(bare, tmp_path / "clicks.jsonl")
    with open(tmp_path / "catalog.jsonl", "w") as fh:
        for row in world.catalog:
            fh.write(json.dumps(row) + "\n")
    args = ["train", "ranker", "--logs", str(tmp_path / "clicks.jsonl"), "--catalog", str(tmp_path / "catalog.jsonl"),
            "--epochs", "1", "--no-progress", "--no-xgboost"]
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, [*args, "--click-sessions", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "click-session groups:" in result.output
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["train_sessions"] + summary["validation_sessions"] > len(bare) // 2
    # without impressions only a session's own clicks, carts and orders could be told apart: few pairs
    assert summary["pairs"]["sessions_with_pairs"] < len(bare) // 4
    assert summary["served"] == "siamese" and isinstance(load_reranker(out), SiameseRanker)
