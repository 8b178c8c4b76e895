"""What the ranker read of one candidate, and which of those inputs moved its score most.

Computed from the ranker itself on the candidates it was given, never estimated:

* the XGBoost baseline: the trees' own SHAP values (`pred_contribs`), which with the bias add up to
  the score exactly;
* the Siamese ranker: each numeric feature set to its training average (where the tower's input
  normalisation puts it at zero), and each text input (query, item, click stream) left out, the
  candidate scored again; the effect is the score minus that score;
* any other ranker: each input a `Candidate` carries (BM25 score, DSR similarity, the item fields)
  left out and the candidates scored again.

The candidates must be the ones the search gave the ranker (the head of the fused pool, in fused
order, with the same scores), since some features are relative to the others (price rank, BM25
relative to the best); `score` is the recomputed score, to be checked against the search's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dsr.catalog import item_text
from dsr.reranker.base import Candidate, Reranker
from dsr.reranker.features import NUMERIC_FEATURES

FEATURE_DOCS: Mapping[str, str] = {f.name: f.doc for f in NUMERIC_FEATURES}
CANDIDATE_FIELDS = ("title", "brand", "category", "price", "description")


@dataclass(frozen=True)
class RankerInput:
    """One input of the ranker for the candidate: its value, and the score it is responsible for (None: not known)."""

    name: str
    value: float | str | None
    effect: float | None
    doc: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "effect": self.effect, "doc": self.doc}


@dataclass(frozen=True)
class RankerExplanation:
    """The ranker's score of one candidate and its inputs, those that moved the score most first."""

    ranker: str
    score: float
    method: str
    inputs: tuple[RankerInput, ...]
    bias: float | None = None  # the XGBoost trees' base value

    def to_json(self) -> dict[str, Any]:
        return {"ranker": self.ranker, "score": self.score, "method": self.method, "bias": self.bias,
                "inputs": [i.to_json() for i in self.inputs]}


def explain_candidate(ranker: Reranker, query: str, candidates: Sequence[Candidate], index: int,
                      user: Mapping[str, Any] | None = None) -> RankerExplanation:
    """Why `ranker` scored `candidates[index]` as it did, among `candidates` for `query` and `user`."""
    if not 0 <= index < len(candidates):
        raise IndexError(f"candidate {index} of {len(candidates)}")
    from dsr.reranker.siamese import SiameseRanker
    from dsr.reranker.xgb import XGBoostRanker

    if isinstance(ranker, XGBoostRanker):
        return _xgboost(ranker, query, candidates, index, user)
    if isinstance(ranker, SiameseRanker):
        return _siamese(ranker, query, candidates, index, user)
    return _left_out(ranker, query, candidates, index, user)


def _ordered(inputs: list[RankerInput]) -> tuple[RankerInput, ...]:
    return tuple(sorted(inputs, key=lambda i: (i.effect is None, -abs(i.effect or 0.0), i.name)))


def _xgboost(ranker: Any, query: str, candidates: Sequence[Candidate], index: int,
             user: Mapping[str, Any] | None) -> RankerExplanation:
    import xgboost as xgb

    extractor = ranker.extractor
    names = list(extractor.config.numeric)
    x = extractor.numeric(query, candidates, user, extractor.recent_items(user))
    row = x[index:index + 1]
    contributions = ranker.booster.predict(xgb.DMatrix(row, feature_names=names), pred_contribs=True)[0]
    score = float(np.asarray(ranker.booster.inplace_predict(row), dtype=np.float32)[0])
    inputs = [RankerInput(name, float(row[0, j]), float(contributions[j]), FEATURE_DOCS.get(name, ""))
              for j, name in enumerate(names)]
    return RankerExplanation("xgboost", score, "SHAP values of the boosted trees (their pred_contribs): each "
                             "input's share of the score; with the bias they add up to it", _ordered(inputs),
                             bias=float(contributions[-1]))


def _siamese(ranker: Any, query: str, candidates: Sequence[Candidate], index: int,
             user: Mapping[str, Any] | None) -> RankerExplanation:
    import torch

    extractor, tower = ranker.extractor, ranker.tower
    f = extractor.extract(query, candidates, user)
    names = list(extractor.config.numeric)
    numeric = torch.from_numpy(f.numeric[index:index + 1])
    query_ids = torch.from_numpy(f.query_ids)[None, :]
    item_ids = torch.from_numpy(f.item_ids[index:index + 1])
    click_ids = torch.from_numpy(f.click_ids)[None, :]
    click_cross = torch.from_numpy(f.click_cross[index:index + 1])
    variants: list[tuple[torch.Tensor, ...]] = [(numeric, query_ids, item_ids, click_ids, click_cross)]
    for j in range(len(names)):  # the feature at the training average: zero after the tower's normalisation
        changed = numeric.clone()
        changed[0, j] = tower.numeric_mean[j]
        variants.append((changed, query_ids, item_ids, click_ids, click_cross))
    groups: list[tuple[str, str, str]] = []
    if tower.config.use_text:
        recent = extractor.recent_items(user)
        groups = [("query text", query, "the query's words and word pairs, as hashed ids"),
                  ("item text", item_text(candidates[index].item), "the item's title, brand and category words"),
                  ("click stream", f"{len(recent)} recent click(s)", "the user's recent clicks, pooled")]
        variants.append((numeric, torch.zeros_like(query_ids), item_ids, click_ids, click_cross))
        variants.append((numeric, query_ids, torch.zeros_like(item_ids), click_ids, click_cross))
        variants.append((numeric, query_ids, item_ids, torch.zeros_like(click_ids), torch.zeros_like(click_cross)))
    batch = [torch.cat([v[k] for v in variants]) for k in range(5)]
    tower.eval()
    with torch.inference_mode():
        scores = tower(*batch).numpy().astype(np.float64)
    base = float(scores[0])
    inputs = [RankerInput(name, float(f.numeric[index, j]), base - float(scores[1 + j]), FEATURE_DOCS.get(name, ""))
              for j, name in enumerate(names)]
    offset = 1 + len(names)
    inputs += [RankerInput(name, value, base - float(scores[offset + n]), doc)
               for n, (name, value, doc) in enumerate(groups)]
    return RankerExplanation("siamese", base, "each numeric input set to its training average, each text input "
                             "left out, and the candidate scored again: effect = score - that score",
                             _ordered(inputs))


def _left_out(ranker: Reranker, query: str, candidates: Sequence[Candidate], index: int,
              user: Mapping[str, Any] | None) -> RankerExplanation:
    target = candidates[index]
    base = _score_of(ranker, query, candidates, index, user)
    fields = tuple(getattr(ranker, "item_fields", None) or CANDIDATE_FIELDS)
    trials: list[tuple[str, float | str | None, str, Candidate]] = [
        ("bm25", target.bm25, "first-stage term score", replace(target, bm25=None)),
        ("dsr", target.dsr, "first-stage DSR similarity", replace(target, dsr=None)),
    ]
    for name in fields:
        if name in target.item:
            value = target.item[name]
            shown = value if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
            left = {k: v for k, v in target.item.items() if k != name}
            trials.append((name, shown, "item field", replace(target, item=left)))
    inputs = [RankerInput("fused_rank", float(target.fused_rank), None, "0-based place after fusion")]
    for name, value, doc, changed in trials:
        trial = [*candidates[:index], changed, *candidates[index + 1:]]
        inputs.append(RankerInput(name, value, base - _score_of(ranker, query, trial, index, user), doc))
    return RankerExplanation(type(ranker).__name__, base, "each input left out of the candidate, which is scored "
                             "again with the others: effect = score - that score", _ordered(inputs))


def _score_of(ranker: Reranker, query: str, candidates: Sequence[Candidate], index: int,
              user: Mapping[str, Any] | None) -> float:
    return float(np.asarray(ranker.score(query, candidates, user), dtype=np.float64)[index])
