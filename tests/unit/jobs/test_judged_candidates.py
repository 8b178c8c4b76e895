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


def test_a_click_log_without_impressions_gives_one_group_per_session_with_the_users_earlier_clicks(world):
    from dsr.jobs.judged_candidates import click_session_groups
    from dsr.logs.records import Session

    catalog = {it["id"]: it for it in world.catalog}
    q = world.queries[0]
    first = list(q.relevant)[:2]
    sessions = [
        Session("late", q.text, user_id="u1", ts=20.0, clicks=(first[1],)),
        Session("early", q.text, user_id="u1", ts=10.0, clicks=(first[0],), orders=(first[0],)),
        Session("nothing", q.text, user_id="u2", ts=5.0),
        Session("missed", q.text, user_id="u2", ts=6.0, clicks=("not-a-catalog-id",)),
    ]
    groups, skipped = click_session_groups(sessions, catalog, top_k=len(catalog), progress=False)
    by_id = {g.group_id: g for g in groups}
    assert set(by_id) == {"late", "early"}
    assert skipped == {"session without a click": 1, "chosen item not among the first stage's candidates": 1}
    early_labels = dict(zip((c.item["id"] for c in by_id["early"].candidates), by_id["early"].labels, strict=True))
    assert early_labels[first[0]] == 3.0 and sorted(set(early_labels.values())) == [0.0, 3.0]  # its strongest event
    assert by_id["early"].user == {"user_id": "u1", "recent_clicks": ()}  # nothing before its own time
    assert by_id["late"].user == {"user_id": "u1", "recent_clicks": (first[0],)}  # the earlier session only
    impersonal, _ = click_session_groups(sessions, catalog, top_k=len(catalog), personal=False, progress=False)
    assert all(g.user is None for g in impersonal)


class CountingEncoder:
    """A real hashing encoder that counts the query batches it is asked for."""

    def __init__(self) -> None:
        from dsr.encoders.hashing import HashingEncoder

        self.inner = HashingEncoder(dim=16)
        self.dim = 16
        self.calls: list[int] = []

    def encode_queries(self, texts, users=None):
        self.calls.append(len(texts))
        return self.inner.encode_queries(texts, users)

    def encode_items(self, items):
        return self.inner.encode_items(items)


def test_primed_queries_are_encoded_in_batches_and_give_the_vectors_one_at_a_time_would():
    import numpy as np

    from dsr.jobs.judged_candidates import PreEncodedQueries

    counting = CountingEncoder()
    pre = PreEncodedQueries(counting, batch_size=2)
    texts = ["cordless drill", "garden hose", "cordless drill", "paint"]
    pre.prime(texts)
    assert counting.calls == [2, 1]  # each distinct text once, in batches
    for text in texts:
        np.testing.assert_allclose(pre.encode_queries([text]), counting.inner.encode_queries([text]), atol=1e-6)
    assert counting.calls == [2, 1]  # served from the batches
    pre.encode_queries(["unseen"])
    pre.encode_queries(["paint"], [{"user_id": "u1"}])  # a user: the encoder itself decides
    assert counting.calls == [2, 1, 1, 1]
    assert pre.dim == 16  # everything else is the encoder's


def test_the_first_stage_asks_a_personalised_query_tower_with_the_user_and_keeps_each_view_apart(world, tmp_path):
    from dsr.encoders.model import TwoTowerModel
    from dsr.jobs.judged_candidates import FirstStage

    catalog = {it["id"]: it for it in world.catalog}
    TwoTowerModel.build(world.catalog, use_user=True, hidden=(16,)).save(tmp_path / "dpsr")
    query = world.queries[0].text
    clicked = {"user_id": "u1", "recent_clicks": tuple(list(catalog)[:3])}
    with FirstStage(catalog, model_dir=tmp_path / "dpsr", top_k=20, progress=False) as stage:
        alone = stage(query)
        personal = stage(query, clicked)
        assert stage(query) is alone and stage(query, dict(clicked)) is personal  # cached per view
        similarity = {c.item["id"]: c.dsr for c in alone}
        moved = [c for c in personal if c.item["id"] in similarity and c.dsr != pytest.approx(similarity[c.item["id"]])]
        assert moved  # the user's clicks changed the query vector
