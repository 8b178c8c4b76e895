"""The data of a `dsr train` run: its facts, and a validation part that no training file contains."""

from __future__ import annotations

import json

from dsr.jobs.recipe import DataFacts, GradeMap, choose_recipe
from dsr.jobs.train_data import (
    gather_facts,
    hold_out_queries,
    latest_sessions,
    load_training_data,
    read_validation,
    session_grades,
    split_data,
)
from dsr.logs.jsonl import load_sessions_jsonl
from dsr.logs.judged import read_graded
from dsr.logs.records import Session

ITEMS = [{"id": f"p{i}", "title": f"product {i}", **({"description": "long text"} if i % 2 else {})}
         for i in range(20)]


def _shop(tmp_path, *, judgments: str | None = None, sessions: list[Session] | None = None):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in ITEMS))
    paths = {"catalog": catalog}
    if judgments is not None:
        paths["judgments"] = tmp_path / "judgments.tsv"
        paths["judgments"].write_text(judgments)
    if sessions is not None:
        from dsr.logs.jsonl import write_sessions_jsonl

        paths["logs"] = tmp_path / "logs.jsonl"
        write_sessions_jsonl(sessions, paths["logs"])
    return paths


def _judgments(n_queries: int) -> str:
    rows = ["query\titem_id\tgrade"]
    for q in range(n_queries):
        rows += [f"query {q}\tp{q % 20}\t3", f"query {q}\tp{(q + 1) % 20}\t1", f"query {q}\tp{(q + 2) % 20}\t2"]
    return "\n".join(rows) + "\n"


def test_held_out_queries_are_a_stable_share_never_all_and_never_none():
    queries = {f"q{i}" for i in range(50)}
    held = hold_out_queries(queries, 0.2)
    assert len(held) == 10 and held <= queries
    assert hold_out_queries(sorted(queries, reverse=True), 0.2) == held  # by the text, not the order given
    assert hold_out_queries({"Q1 ", *queries - {"q1"}}, 0.2) - {"Q1 "} <= held  # case and spaces do not matter
    assert len(hold_out_queries({"a", "b"}, 0.01)) == 1
    assert len(hold_out_queries({"a", "b"}, 0.9)) == 1
    assert hold_out_queries({"only"}, 0.2) == {"only"}


def test_the_towers_choose_their_epoch_on_queries_of_the_training_part():
    from dsr.jobs.train_retrieval import _is_validation  # the towers' own epoch-choice share

    queries = {f"query number {i}" for i in range(2000)}
    training = queries - hold_out_queries(queries, 0.1)
    chosen = sum(_is_validation(q, 0.1) for q in training)
    assert 0.07 * len(training) < chosen < 0.13 * len(training)  # a tenth of the training part, not none


def test_the_latest_sessions_are_held_out_and_untimed_ones_stay_in_training():
    sessions = [Session(f"s{i}", "drill", ts=float(i), clicks=("p1",)) for i in range(10)]
    sessions.append(Session("untimed", "drill", clicks=("p2",)))
    earlier, latest = latest_sessions(sessions, 0.2)
    assert [s.session_id for s in latest] == ["s8", "s9"]
    assert {s.session_id for s in earlier} == {f"s{i}" for i in range(8)} | {"untimed"}


def test_logged_actions_grade_their_items_by_the_strongest():
    grades = session_grades([Session("a", "q", clicks=("p1", "p2"), add_to_carts=("p2",)),
                             Session("b", "q", clicks=("p3",), orders=("p3",))])
    assert grades == {"q": {"p1": 1.0, "p2": 2.0, "p3": 3.0}}


def test_facts_count_what_the_recipe_reads(tmp_path):
    sessions = [Session("a", "drill", ts=1.0, impressions=("p1", "p2"), clicks=("p1",)),
                Session("b", "saw", impressions=("p3",), clicks=("p3",), orders=("p4",)),
                Session("c", "saw", ts=3.0, impressions=("p3", "p4"))]
    paths = _shop(tmp_path, judgments=_judgments(4), sessions=sessions)
    data = load_training_data(paths["catalog"], logs=[paths["logs"]], judgments=paths["judgments"])
    facts = gather_facts(data, device="cpu", threads=2, time_budget_s=None)
    assert facts == DataFacts(items=20, described_items=10, judged_queries=4, judged_pairs=12,
                              grades=((1.0, 4), (2.0, 4), (3.0, 4)), sessions=3, clicked_sessions=2, clicks=3,
                              shown_sessions=1, timed_sessions=2, log_queries=2, device="cpu", threads=2)


def test_judged_validation_queries_leave_every_training_file(tmp_path):
    sessions = [Session(f"s{q}", f"query {q}", ts=float(q), impressions=(f"p{q % 20}", "p19"),
                        clicks=(f"p{q % 20}",)) for q in range(40)]
    paths = _shop(tmp_path, judgments=_judgments(40), sessions=sessions)
    data = load_training_data(paths["catalog"], logs=[paths["logs"]], judgments=paths["judgments"])
    recipe = choose_recipe(gather_facts(data, device="cpu", threads=2, time_budget_s=None))
    assert recipe.validation == "query"
    split = split_data(data, recipe, tmp_path / "data")
    validation = read_validation(split.validation)
    assert split.validation_queries == len(validation) == round(40 * recipe.validation_share)
    assert split.train_judgments is not None and split.train_sessions is not None
    train_judged, _ = read_graded(split.train_judgments)
    train_logged, _ = load_sessions_jsonl(split.train_sessions)
    assert not set(validation) & set(train_judged)
    assert not set(validation) & {s.query for s in train_logged}
    assert len(train_judged) + len(validation) == 40
    # gains: grade - 1 (the lowest grade is judged not relevant), in dsr.eval's integer form
    q = next(iter(validation))
    assert sorted(validation[q].values()) == [0, 12, 24]


def test_logs_alone_are_held_out_by_time_with_clicks_as_the_judgments(tmp_path):
    sessions = [Session(f"s{i}", f"query {i % 5}", ts=float(i), impressions=(f"p{i % 20}", "p19"),
                        clicks=(f"p{i % 20}",)) for i in range(50)]
    paths = _shop(tmp_path, sessions=sessions)
    data = load_training_data(paths["catalog"], logs=[paths["logs"]])
    recipe = choose_recipe(gather_facts(data, device="cpu", threads=2, time_budget_s=None))
    assert recipe.validation == "time"
    split = split_data(data, recipe, tmp_path / "data")
    train_logged, _ = load_sessions_jsonl(split.train_sessions)
    assert max(s.ts for s in train_logged) < 40.0  # the latest 20% (ts 40..49) are validation
    validation = read_validation(split.validation)
    assert validation["query 0"] == {"p0": 12, "p5": 12}  # sessions 40 and 45, each click gain 1


def test_click_logs_without_impressions_give_the_ranker_click_judgments(tmp_path):
    sessions = [Session(f"s{i}", f"query {i % 30}", clicks=(f"p{i % 20}",)) for i in range(90)]
    paths = _shop(tmp_path, sessions=sessions)
    data = load_training_data(paths["catalog"], logs=[paths["logs"]])
    recipe = choose_recipe(gather_facts(data, device="cpu", threads=2, time_budget_s=None))
    assert (recipe.validation, recipe.ranker_data) == ("query", "clicks")
    split = split_data(data, recipe, tmp_path / "data")
    clicks, _ = read_graded(split.train_clicks)
    assert clicks and all(g == 1.0 for row in clicks.values() for g in row.values())
    assert not set(clicks) & set(read_validation(split.validation))


def test_the_grade_map_is_applied_to_the_training_judgments(tmp_path):
    paths = _shop(tmp_path, judgments="query\titem_id\tgrade\n" + "".join(
        f"q{q}\tp{q % 20}\t1\nq{q}\tp{(q + 1) % 20}\t0\n" for q in range(30)))
    data = load_training_data(paths["catalog"], judgments=paths["judgments"])
    recipe = choose_recipe(gather_facts(data, device="cpu", threads=2, time_budget_s=None))
    assert recipe.grade_map == GradeMap(2.0, 1.0)  # binary 0/1 onto 1/3
    split = split_data(data, recipe, tmp_path / "data")
    train, _ = read_graded(split.train_judgments)
    assert {g for row in train.values() for g in row.values()} == {1.0, 3.0}
    assert {g for row in read_validation(split.validation).values() for g in row.values()} == {0, 24}
