"""The ranker's inputs of one candidate and their effects, computed from the ranker itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsr.reranker.base import Candidate
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.siamese import SiameseRanker
from dsr.reranker.tower import RankerTower, TowerConfig
from dsr.server.workbench.ranker_inputs import explain_candidate

from ....support.shoes import CheapestFirst, catalog
from ....support.workbench_shop import shop_catalog, train_ranker

SMALL = FeatureConfig(buckets=1 << 12)


def candidates(n: int = 12) -> list[Candidate]:
    rows = catalog(n)
    return [Candidate(item=r, bm25=None if k % 4 == 3 else 10.0 - k, dsr=0.9 - 0.05 * k, fused_rank=k)
            for k, r in enumerate(rows)]


@pytest.fixture(scope="module")
def xgboost_ranker(tmp_path_factory):
    from dsr.reranker.load import load_reranker

    return load_reranker(train_ranker(tmp_path_factory.mktemp("ranker") / "xgb", shop_catalog()))


def test_xgboost_inputs_are_the_trees_shap_values_which_add_up_to_the_score(xgboost_ranker):
    cands = candidates()
    scores = xgboost_ranker.score("red sneakers", cands)
    for index in (0, 5):
        explained = explain_candidate(xgboost_ranker, "red sneakers", cands, index)
        assert explained.ranker == "xgboost"
        assert explained.score == pytest.approx(float(scores[index]), abs=1e-5)
        effects = [i.effect for i in explained.inputs]
        assert explained.bias is not None
        assert sum(effects) + explained.bias == pytest.approx(explained.score, abs=1e-4)
        assert [abs(e) for e in effects] == sorted((abs(e) for e in effects), reverse=True)
        names = {i.name for i in explained.inputs}
        assert names == set(SMALL.numeric)
        values = {i.name: i.value for i in explained.inputs}
        assert values["bm25"] == cands[index].bm25 and values["has_bm25"] == 1.0
        assert values["fused_rr"] == pytest.approx(1 / (1 + index))


def siamese() -> SiameseRanker:
    torch.manual_seed(0)
    tower = RankerTower(TowerConfig(n_numeric=len(SMALL.numeric), buckets=SMALL.buckets, dim=8, hidden=(16, 8, 4)))
    with torch.no_grad():  # a spread of training averages, so setting a feature to its own is a change
        tower.numeric_mean.copy_(torch.linspace(-1.0, 1.0, len(SMALL.numeric)))
    tower.eval()
    return SiameseRanker(FeatureExtractor(SMALL), tower)


def test_siamese_effects_are_the_score_minus_the_score_with_the_input_at_its_training_average():
    ranker = siamese()
    cands = candidates()
    user = {"recent_clicks": [catalog(20)[15]], "price_level": 4.0}
    index = 2
    explained = explain_candidate(ranker, "red sneakers", cands, index, user)
    served = ranker.score("red sneakers", cands, user)
    assert explained.ranker == "siamese"
    assert explained.score == pytest.approx(float(served[index]), abs=1e-5)
    by_name = {i.name: i for i in explained.inputs}
    assert set(by_name) == {*SMALL.numeric, "query text", "item text", "click stream"}
    # the effect of log_price, recomputed by hand through the served tower
    extractor, tower = ranker.extractor, ranker.tower
    f = extractor.extract("red sneakers", cands, user)
    column = list(SMALL.numeric).index("log_price")
    numeric = f.numeric.copy()
    numeric[index, column] = float(tower.numeric_mean[column])
    with torch.inference_mode():
        changed = tower(torch.from_numpy(numeric), torch.from_numpy(f.query_ids).expand(len(cands), -1),
                        torch.from_numpy(f.item_ids), torch.from_numpy(f.click_ids).expand(len(cands), -1),
                        torch.from_numpy(f.click_cross)).numpy()
    assert by_name["log_price"].effect == pytest.approx(float(served[index] - changed[index]), abs=1e-5)
    assert by_name["log_price"].value == pytest.approx(float(np.log1p(cands[index].item["price"])))
    assert any(abs(i.effect or 0) > 1e-6 for i in explained.inputs)
    assert by_name["query text"].value == "red sneakers"


def test_any_other_ranker_is_explained_by_leaving_each_input_out():
    cands = candidates()
    explained = explain_candidate(CheapestFirst(), "red sneakers", cands, 4)
    assert explained.score == -cands[4].item["price"]
    first = explained.inputs[0]
    assert first.name == "price" and first.effect == pytest.approx(-cands[4].item["price"])  # left out: price 0
    assert all(i.effect == 0 for i in explained.inputs[1:] if i.effect is not None)


def test_the_candidate_must_be_among_those_given():
    with pytest.raises(IndexError):
        explain_candidate(CheapestFirst(), "q", candidates(3), 3)
