"""The ranker that serves is the one that orders the held-out groups best, measured against the first stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dsr.reranker.base import Candidate
from dsr.reranker.choice import choose_ranker, read_served, write_choice
from dsr.reranker.groups import RankGroup, graded_pairs


class ByField:
    """Scores each candidate by one of its item fields: a ranker whose quality the test controls."""

    def __init__(self, name: str) -> None:
        self.name = name

    def score(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None = None) -> np.ndarray:
        return np.array([float(c.item[self.name]) for c in candidates], dtype=np.float32)


def group(n: int, relevant: int) -> RankGroup:
    """`n` candidates in fused order; the one at `relevant` is the only relevant one and has the best DSR score."""
    cands = tuple(Candidate(item={"id": str(i), "good": float(i == relevant), "bad": float(i)},
                            dsr=1.0 if i == relevant else 0.1 * (n - i) / n, fused_rank=i) for i in range(n))
    labels = tuple(1.0 if i == relevant else 0.0 for i in range(n))
    return RankGroup(f"g{relevant}", "q", cands, labels, graded_pairs(labels))


def test_the_best_validation_ranker_serves_and_is_compared_with_the_fused_and_dsr_orders():
    groups = [group(12, r) for r in (3, 5, 8)]
    choice = choose_ranker({"siamese": ByField("bad"), "xgboost": ByField("good")}, groups)
    assert choice.served == "xgboost"
    assert set(choice.figures) == {"first_stage", "dsr", "siamese", "xgboost"}
    assert choice.figures["xgboost"]["ndcg@10"] == 1.0 and choice.figures["xgboost"]["session_auc"] == 1.0
    assert choice.figures["siamese"]["ndcg@10"] < choice.figures["first_stage"]["ndcg@10"] <= 1.0
    assert choice.figures["dsr"]["ndcg@10"] == 1.0  # DSR already puts the relevant one first
    assert "does not beat the best first-stage order (dsr) by +0.0000" in choice.reason


def test_a_tie_keeps_the_first_ranker_and_a_worse_one_never_serves():
    groups = [group(6, 2), group(6, 4)]
    assert choose_ranker({"siamese": ByField("good"), "xgboost": ByField("good")}, groups).served == "siamese"
    beaten = choose_ranker({"siamese": ByField("bad"), "xgboost": ByField("good")}, groups)
    assert beaten.served == "xgboost"


def test_without_validation_groups_the_first_ranker_serves_and_says_why():
    choice = choose_ranker({"siamese": ByField("good"), "xgboost": ByField("bad")}, [])
    assert choice.served == "siamese" and "no validation groups" in choice.reason


def test_the_choice_is_written_beside_the_models_and_read_back(tmp_path):
    choice = choose_ranker({"siamese": ByField("bad"), "xgboost": ByField("good")}, [group(5, 3)])
    write_choice(tmp_path, choice)
    assert read_served(tmp_path) == "xgboost"
    assert read_served(tmp_path / "elsewhere") is None
    (tmp_path / "served.json").write_text("not json")
    assert read_served(tmp_path) is None
