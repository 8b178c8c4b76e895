"""The recipe `dsr train` chooses: each rule, from facts alone, with a reason for every choice."""

from __future__ import annotations

import dataclasses

import pytest

from dsr.jobs.recipe import (
    FROZEN_TOWERS,
    NGRAM_TOWERS,
    TUNED_TOWERS,
    CostModel,
    DataFacts,
    GradeMap,
    choose_recipe,
    tuning_allowance,
)

# 2 CPU threads as measured here: 300 items/s to encode, 3 s a tuning step of 64 triples
CPU = CostModel(encode_per_s=300.0, tune_steps_per_s=1 / 3)

# a Home Depot-like shop: 50k titles, ~7k judged queries graded 1-3, no logs
JUDGED = DataFacts(items=50_000, judged_queries=7000, judged_pairs=45_000,
                   grades=((1.0, 9000), (2.0, 14_000), (2.67, 12_000), (3.0, 10_000)))
# a shop with click logs: impressions, times, no judgments
LOGGED = DataFacts(items=2000, sessions=8000, clicked_sessions=6000, clicks=9000, shown_sessions=6000,
                   timed_sessions=8000, log_queries=200)


def test_every_choice_comes_with_its_reason():
    recipe = choose_recipe(JUDGED, costs=CPU)
    assert set(recipe.reasons) >= {"retrieval", "validation", "epochs", "grades", "ranker", "descriptions", "budget"}
    assert all(isinstance(why, str) and len(why) > 10 for why in recipe.reasons.values())


def test_graded_judgments_without_a_budget_get_the_winning_recipe_held_out_by_query():
    recipe = choose_recipe(JUDGED, costs=CPU)
    assert recipe.retrieval == TUNED_TOWERS
    assert "one pass" in recipe.reasons["retrieval"]
    assert recipe.validation == "query"
    assert 0.1 <= recipe.validation_share <= 0.2 and JUDGED.judged_queries * recipe.validation_share <= 1000
    assert recipe.ranker_data == "judgments" and recipe.unjudged_grade is None  # unjudged: the lowest grade
    assert recipe.grade_map.identity
    assert recipe.epoch_validation_share == 0.1  # thousands of training queries: a tenth chooses the epoch


def test_few_queries_hold_out_a_larger_share_and_keep_the_last_epoch():
    small = dataclasses.replace(JUDGED, items=9913, judged_queries=148, judged_pairs=5763,
                                grades=((1.0, 1000), (2.0, 1200), (3.0, 1500), (4.0, 2063)))
    recipe = choose_recipe(small, costs=CPU)
    assert recipe.validation_share == 0.2  # 30 of 148 would be 20%; never more
    assert recipe.epoch_validation_share == 0.0
    assert "last epoch is kept" in recipe.reasons["epochs"]


def test_logs_with_times_are_held_out_by_time_and_train_the_ranker_from_sessions():
    recipe = choose_recipe(LOGGED, costs=CPU)
    assert recipe.validation == "time" and recipe.validation_share == 0.1
    assert "latest" in recipe.reasons["validation"]
    assert recipe.ranker_data == "sessions"
    assert recipe.retrieval.negatives == ("hard", "random")


def test_logs_without_times_are_held_out_by_query():
    recipe = choose_recipe(dataclasses.replace(LOGGED, timed_sessions=100), costs=CPU)
    assert recipe.validation == "query"


def test_click_logs_without_impressions_use_random_negatives_and_click_judgments_for_the_ranker():
    clicks_only = dataclasses.replace(LOGGED, shown_sessions=0)
    recipe = choose_recipe(clicks_only, costs=CPU)
    assert recipe.retrieval.negatives == ("random",)
    assert "no impressions" in recipe.reasons["retrieval"]
    assert recipe.ranker_data == "clicks" and recipe.unjudged_grade == 0.0
    # one triple per click (random negatives only), not one per click and kind of negative
    assert "~8100 training triples" in recipe.reasons["retrieval"]  # 9,000 clicks, 10% held out by time
    assert "~16200 training triples" in choose_recipe(LOGGED, costs=CPU).reasons["retrieval"]  # hard and random


def test_logs_and_judgments_together_train_the_ranker_on_both():
    both = dataclasses.replace(LOGGED, judged_queries=100, judged_pairs=900, grades=((1.0, 400), (3.0, 500)))
    recipe = choose_recipe(both, costs=CPU)
    assert recipe.ranker_data == "sessions+judgments"
    assert recipe.validation == "query"  # the graded judgments are the better yardstick


def test_too_few_triples_keep_the_backbone_frozen():
    tiny = DataFacts(items=500, judged_queries=20, judged_pairs=100, grades=((1.0, 50), (3.0, 50)))
    recipe = choose_recipe(tiny, costs=CPU)
    assert recipe.retrieval == FROZEN_TOWERS
    assert "too few triples" in recipe.reasons["retrieval"]


def test_a_budget_shorter_than_one_tuning_pass_tunes_for_the_fraction_it_allows():
    # ~2 * 31k positives * 0.86 = ~53k triples: one pass ~2,500 s at 3 s a step
    recipe = choose_recipe(dataclasses.replace(JUDGED, time_budget_s=3600.0), costs=CPU)
    assert recipe.retrieval.backbone == "tuned"
    assert 0.1 <= recipe.retrieval.backbone_epochs < 1.0
    assert "of a pass" in recipe.reasons["retrieval"]


def test_a_budget_that_leaves_no_tuning_keeps_the_backbone_frozen():
    # 240 s for retrieval: 67 s to encode 20k items, 24 s for the heads, and under a tenth of a tuning pass
    recipe = choose_recipe(dataclasses.replace(JUDGED, items=20_000, time_budget_s=400.0), costs=CPU)
    assert recipe.retrieval == FROZEN_TOWERS
    assert "less than 0.1 of a tuning pass" in recipe.reasons["retrieval"]


def test_a_catalog_too_large_to_encode_within_the_budget_gets_n_gram_towers():
    recipe = choose_recipe(dataclasses.replace(JUDGED, items=500_000, time_budget_s=1200.0), costs=CPU)
    assert recipe.retrieval == NGRAM_TOWERS
    assert "encoding the catalog" in recipe.reasons["retrieval"]


def test_a_gpu_makes_the_same_budget_enough_for_a_whole_pass():
    on_gpu = dataclasses.replace(JUDGED, device="cuda", time_budget_s=1200.0)
    assert choose_recipe(on_gpu).retrieval == TUNED_TOWERS
    assert choose_recipe(dataclasses.replace(on_gpu, device="cpu")).retrieval != TUNED_TOWERS


def test_the_stage_shares_follow_the_towers():
    assert choose_recipe(JUDGED, costs=CPU).shares["retrieval"] > choose_recipe(
        JUDGED, backbone="none", costs=CPU).shares["retrieval"]
    shares = choose_recipe(LOGGED, costs=CPU).shares
    assert set(shares) == {"retrieval", "ranker", "validation"} and abs(sum(shares.values()) - 1.0) < 1e-9


@pytest.mark.parametrize("backbone, expected", [("tuned", TUNED_TOWERS), ("frozen", FROZEN_TOWERS),
                                                ("none", NGRAM_TOWERS)])
def test_an_explicit_backbone_wins_over_the_rules(backbone, expected):
    recipe = choose_recipe(dataclasses.replace(JUDGED, time_budget_s=60.0), backbone=backbone, costs=CPU)
    assert recipe.retrieval == expected
    assert "asked for" in recipe.reasons["retrieval"]


@pytest.mark.parametrize("grades, mapped", [
    (((1.0, 5), (2.0, 5), (3.0, 5)), {1.0: 1.0, 3.0: 3.0}),  # Home Depot's 1-3: as they are
    (((1.0, 5), (4.0, 5)), {1.0: 1.0, 4.0: 4.0}),  # CrowdFlower's 1-4: as they are
    (((0.0, 5), (1.0, 5), (3.0, 5)), {0.0: 1.0, 3.0: 4.0}),  # `dsr eval --export` gains: shifted by one
    (((0.0, 5), (1.0, 5)), {0.0: 1.0, 1.0: 3.0}),  # binary: spread onto 1-3
    (((1.0, 5),), {1.0: 3.0}),  # one grade: a list of relevant items
])
def test_grades_are_put_where_positives_are_read(grades, mapped):
    facts = DataFacts(items=100, judged_queries=3, judged_pairs=sum(n for _, n in grades), grades=grades)
    grade_map = choose_recipe(facts, costs=CPU).grade_map
    assert {g: grade_map(g) for g in mapped} == pytest.approx(mapped)


def test_judgments_of_one_grade_label_unjudged_candidates_below_it():
    facts = DataFacts(items=100, judged_queries=30, judged_pairs=90, grades=((1.0, 90),))
    recipe = choose_recipe(facts, costs=CPU)
    assert recipe.grade_map == GradeMap(0.0, 3.0) and recipe.unjudged_grade == 0.0


def test_descriptions_are_noted():
    with_text = choose_recipe(dataclasses.replace(JUDGED, described_items=40_000), costs=CPU)
    assert "40000 of 50000 items have a description" in with_text.reasons["descriptions"]
    assert "no item has a description" in choose_recipe(JUDGED, costs=CPU).reasons["descriptions"]


def test_no_training_data_is_refused():
    with pytest.raises(ValueError, match="judgments or logged sessions"):
        choose_recipe(DataFacts(items=10, sessions=5))
    with pytest.raises(ValueError, match="catalog"):
        choose_recipe(DataFacts(items=0, judged_queries=1))
    with pytest.raises(ValueError, match="unknown backbone"):
        choose_recipe(JUDGED, backbone="bert")


def test_the_tuning_leaves_room_for_encoding_and_heads():
    facts = DataFacts(items=30_000, judged_queries=1)
    assert tuning_allowance(1000.0, facts, CPU) == pytest.approx(800.0)  # 900 - 100 s of encoding
    assert tuning_allowance(100.0, facts, CPU) == pytest.approx(50.0)  # never below half the stage
