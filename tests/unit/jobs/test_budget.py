"""The time budget of `dsr train`: durations, each stage's share, and trainers that stop at a deadline."""

from __future__ import annotations

import dataclasses
import time

import pytest

from dsr.encoders.model import TwoTowerModel
from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig, train_two_tower
from dsr.errors import UsageError
from dsr.jobs.budget import TimeBudget, format_duration, parse_duration
from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.logs.triples import TripleConfig, build_triples
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import groups_from_sessions
from dsr.reranker.pairs import build_pairs
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, train_siamese
from dsr.schedule import TrainSchedule


@pytest.mark.parametrize("text, seconds", [
    ("600", 600.0), ("90s", 90.0), ("30m", 1800.0), ("1.5h", 5400.0), ("1h30m", 5400.0), ("2m 30s", 150.0),
    (45, 45.0), (None, None), ("", None),
])
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "30x", "m30", "-5", "0", "1h-5m", "30 m 5", "1h30"])
def test_a_duration_that_is_not_one_is_refused(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def test_durations_print_in_a_readable_unit():
    assert [format_duration(s) for s in (45, 750, 9000)] == ["45 s", "12.5 min", "2.5 h"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


SHARES = {"retrieval": 0.6, "ranker": 0.25, "validation": 0.15}


def test_each_stage_gets_its_share_of_the_whole_budget_when_the_others_use_theirs():
    clock = FakeClock()
    budget = TimeBudget(1000.0, SHARES, clock)
    assert budget.allowance("retrieval") == pytest.approx(600.0)
    clock.now += 600.0
    budget.done("retrieval")
    assert budget.allowance("ranker") == pytest.approx(250.0)
    clock.now += 250.0
    budget.done("ranker")
    assert budget.allowance("validation") == pytest.approx(150.0)


def test_time_a_stage_leaves_goes_to_the_later_stages_in_proportion():
    clock = FakeClock()
    budget = TimeBudget(1000.0, SHARES, clock)
    clock.now += 200.0  # retrieval finished 400 s early
    budget.done("retrieval")
    assert budget.allowance("ranker") == pytest.approx(800.0 * 0.25 / 0.4)
    assert budget.allowance("validation") == pytest.approx(800.0 * 0.15 / 0.4)


def test_a_resumed_stage_hands_its_whole_share_on():
    budget = TimeBudget(1000.0, SHARES, FakeClock())
    budget.done("retrieval")  # resumed: took no time in this run
    assert budget.allowance("ranker") == pytest.approx(1000.0 * 0.25 / 0.4)


def test_a_spent_budget_allows_nothing_and_no_budget_allows_anything():
    clock = FakeClock()
    budget = TimeBudget(100.0, SHARES, clock)
    clock.now += 150.0
    assert budget.left() == pytest.approx(-50.0)
    assert budget.allowance("retrieval") == 0.0
    assert TimeBudget(None, SHARES, clock).allowance("retrieval") is None


def test_the_budget_counts_from_the_run_start_when_given():
    clock = FakeClock()
    budget = TimeBudget(100.0, SHARES, clock, started=clock.now - 40.0)  # reading the data took 40 s
    assert budget.left() == pytest.approx(60.0)


def test_a_stage_that_is_not_waiting_is_a_programming_error():
    budget = TimeBudget(100.0, SHARES, FakeClock())
    budget.done("retrieval")
    with pytest.raises(KeyError):
        budget.allowance("retrieval")


def test_a_schedule_within_a_budget_has_a_deadline_and_keeps_an_earlier_one():
    schedule = TrainSchedule(epochs=1, batch_size=8, lr=1e-3)
    assert schedule.within(None) is schedule and not schedule.out_of_time()
    soon = schedule.within(60.0)
    assert soon.deadline is not None and time.monotonic() < soon.deadline <= time.monotonic() + 60.0
    assert not soon.out_of_time()
    assert soon.within(3600.0).deadline == soon.deadline
    assert schedule.within(0.0).out_of_time()


@pytest.fixture(scope="module")
def world():
    return make_world(n_items=150, n_queries=20, n_users=8, seed=2)


def test_the_two_tower_trainer_stops_at_its_deadline_after_one_batch(world):
    sessions = simulate_sessions(world, 400, seed=2)
    ids = [str(r["id"]) for r in world.catalog]
    triples = build_triples(sessions, ids, TripleConfig(negatives=("hard", "random")))
    model = TwoTowerModel.build(world.catalog, text_buckets=1 << 10, hidden=(16,), dim=8, device="cpu")
    messages: list[str] = []
    schedule = TWO_TOWER_SCHEDULE.replace(epochs=3, batch_size=16, progress=False).within(0.0)
    result = train_two_tower(model, triples, world.catalog, TrainConfig(schedule), log=messages.append)
    assert len(triples) > 3 * 16
    assert len(result.epochs) == 1  # one batch of the first epoch, then the deadline
    assert any("stopped at the time budget in epoch 1 of 3" in m for m in messages)


def test_the_two_tower_trainer_runs_every_epoch_within_a_generous_budget(world):
    sessions = simulate_sessions(world, 200, seed=3)
    triples = build_triples(sessions, [str(r["id"]) for r in world.catalog], TripleConfig(negatives=("random",)))
    model = TwoTowerModel.build(world.catalog, text_buckets=1 << 10, hidden=(16,), dim=8, device="cpu")
    messages: list[str] = []
    schedule = TWO_TOWER_SCHEDULE.replace(epochs=2, batch_size=64, progress=False).within(3600.0)
    result = train_two_tower(model, triples, world.catalog, TrainConfig(schedule), log=messages.append)
    assert len(result.epochs) == 2 and not any("time budget" in m for m in messages)


def test_the_ranker_validates_once_more_at_its_deadline_and_stops(world):
    sessions = simulate_sessions(world, 400, seed=4)
    pairs, _ = build_pairs(sessions, known_ids=world.items_by_id)
    groups = groups_from_sessions(pairs, world.items_by_id)
    extractor = FeatureExtractor(FeatureConfig(buckets=1 << 10), world.items_by_id)
    schedule = RANKER_SCHEDULE.replace(epochs=5, batch_size=32, patience=None, progress=False).within(0.0)
    _, summary = train_siamese(groups[:60], groups[60:80], extractor,
                               SiameseTrainConfig(schedule, dim=8, hidden=(8, 8, 4)))
    assert summary.epochs_run == 1 and len(summary.history) == 1  # the step at the deadline is validated
    assert summary.history[0]["epoch"] < 1.0 and "val_session_auc" in summary.history[0]



@pytest.mark.slow
def test_the_backbone_tuning_stops_at_its_deadline_and_counts_the_steps_it_took():
    from dsr.encoders.backbone_tuning import BACKBONE_SCHEDULE, BackboneTuneConfig, tune_backbone
    from dsr.logs.triples import Triple

    texts = {"drill": "cordless power drill", "hammer": "claw hammer", "paint": "white wall paint"}
    triples = [Triple("zorblax", "drill", "hammer"), Triple("wall colour", "paint", "drill")] * 4
    messages: list[str] = []
    schedule = BACKBONE_SCHEDULE.replace(epochs=3, batch_size=2, progress=False).within(0.0)
    _, result = tune_backbone(triples, texts, BackboneTuneConfig(schedule=schedule), device="cpu",
                              log=messages.append)
    assert result.steps == 1 and result.triples == 2  # of 12 planned steps
    assert any("stopped at the time budget after 1 of 12 steps" in m for m in messages)


def test_the_retrieval_job_gives_the_heads_their_least_time_past_a_spent_deadline(world, tmp_path):
    import json

    from dsr.jobs.train_retrieval import RetrievalJob, run_retrieval_job
    from dsr.logs.jsonl import write_sessions_jsonl

    catalog, logs = tmp_path / "catalog.jsonl", tmp_path / "logs.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in world.catalog))
    write_sessions_jsonl(simulate_sessions(world, 400, seed=5), logs)
    spent = TrainConfig(TWO_TOWER_SCHEDULE.replace(epochs=3, batch_size=32, progress=False).within(0.0))
    job = RetrievalJob(catalog=catalog, out=tmp_path / "m", logs=(logs,), hidden=(16,), dim=8, validation_share=0.0,
                       train=spent)
    _, cut = run_retrieval_job(job)
    assert cut.result is not None and len(cut.result.epochs) == 1
    _, kept = run_retrieval_job(dataclasses.replace(job, out=tmp_path / "m2", heads_min_s=600.0))
    assert kept.result is not None and len(kept.result.epochs) == 3
