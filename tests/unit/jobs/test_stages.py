"""Resumable stages: a record vouches for a finished stage only while its config, and a cut-short
stage's budget, are the same."""

from __future__ import annotations

from dsr.jobs.stages import StageRecord, StageStore, config_key, is_current

CONFIG = {"catalog": "ab12", "recipe": {"epochs": 4, "lr": 3e-4}, "seed": 0}


def test_the_config_key_ignores_key_order_and_sees_every_value():
    reordered = {"seed": 0, "recipe": {"lr": 3e-4, "epochs": 4}, "catalog": "ab12"}
    assert config_key(CONFIG) == config_key(reordered)
    assert config_key(CONFIG) != config_key({**CONFIG, "seed": 1})
    assert config_key(CONFIG) != config_key({**CONFIG, "recipe": {"epochs": 5, "lr": 3e-4}})


def _record(**changes) -> StageRecord:
    return StageRecord(**{"name": "retrieval", "key": config_key(CONFIG), "config": CONFIG, "seconds": 12.5,
                          **changes})


def test_a_finished_stage_with_the_same_config_is_current_whatever_the_budget():
    record = _record()
    assert is_current(record, config_key(CONFIG), None)
    assert is_current(record, config_key(CONFIG), 600.0)


def test_another_config_or_no_record_runs_the_stage():
    assert not is_current(_record(), config_key({**CONFIG, "seed": 1}), None)
    assert not is_current(None, config_key(CONFIG), None)


def test_a_stage_cut_short_by_its_budget_is_kept_only_under_the_same_budget():
    record = _record(stopped_at_budget=True, budget_s=600.0)
    assert is_current(record, config_key(CONFIG), 600.0)
    assert not is_current(record, config_key(CONFIG), 1800.0)
    assert not is_current(record, config_key(CONFIG), None)


def test_the_store_round_trips_clears_and_ignores_damaged_records(tmp_path):
    store = StageStore(tmp_path / "stages")
    record = _record(stopped_at_budget=True, budget_s=600.0, summary={"best_epoch": 3})
    store.write(record)
    assert store.read("retrieval") == record
    store.clear("retrieval")
    assert store.read("retrieval") is None
    store.path("ranker").write_text("{not json")
    assert store.read("ranker") is None
    store.clear("validation")  # nothing to clear is fine
