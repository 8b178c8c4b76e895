"""The workbench's judgment store: the --judgments file under the page's own grades, kept under the data dir,
exported as the file dsr eval and dsr train ranker read."""

from __future__ import annotations

import json

import pytest

from dsr.errors import UsageError
from dsr.eval.judgments import read_judgments, to_gain
from dsr.eval.loaders import load_generic
from dsr.logs.judged import read_graded
from dsr.server.workbench.judgments import GIVEN, LOADED, JudgmentStore, check_judgment, judgments_tsv


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def loaded(tmp_path):
    return write(tmp_path / "team.tsv", "query\titem_id\tgrade\nred shoes\tp1\t3\nred shoes\tp2\t0\nboots\tp9\t1.5\n")


def test_the_file_is_read_in_every_format_dsr_eval_reads(tmp_path):
    rows = [{"query": "red shoes", "item_id": "p1", "grade": 2}, {"query": "boots", "item_id": "p9", "grade": 1}]
    files = [
        write(tmp_path / "j.tsv", "query\titem_id\tgrade\nred shoes\tp1\t2\nboots\tp9\t1\n"),
        write(tmp_path / "j.csv", "query,item_id,grade\nred shoes,p1,2\nboots,p9,1\n"),
        write(tmp_path / "j.json", json.dumps(rows)),
        write(tmp_path / "j.jsonl", "\n".join(json.dumps(r) for r in rows)),
    ]
    for path in files:
        store = JudgmentStore(tmp_path / "wb" / f"{path.suffix[1:]}.tsv", path)
        assert store.all_grades() == {"red shoes": {"p1": 2.0}, "boots": {"p9": 1.0}}, path.name
        assert {j.origin for j in store.judgments()} == {LOADED}


def test_rejected_lines_of_the_file_are_counted_not_fatal(tmp_path):
    path = write(tmp_path / "j.tsv", "query\titem_id\tgrade\nred shoes\tp1\t2\n\tp2\t1\nboots\tp3\tmany\n")
    store = JudgmentStore(tmp_path / "wb.tsv", path)
    assert store.all_grades() == {"red shoes": {"p1": 2.0}}
    assert store.counts()["rejected"] == 2


def test_a_grade_given_in_the_page_wins_and_taking_it_back_shows_the_files_again(tmp_path, loaded):
    store = JudgmentStore(tmp_path / "wb" / "judgments.tsv", loaded)
    given = store.set("red shoes", "p1", 0)
    assert given is not None and (given.grade, given.origin) == (0.0, GIVEN)
    assert store.grades("red shoes") == {"p1": 0.0, "p2": 0.0}
    back = store.set("red shoes", "p1", None)
    assert back is not None and (back.grade, back.origin) == (3.0, LOADED)
    assert store.set("red shoes", "p7", None) is None  # nothing to take back, nothing in force
    assert store.counts() == {"judgments": 3, "queries": 2, "given": 0, "loaded": 3, "rejected": 0}


def test_the_pages_grades_survive_a_restart_and_never_touch_the_file(tmp_path, loaded):
    before = loaded.read_text()
    store_path = tmp_path / "data" / "workbench" / "judgments.tsv"
    JudgmentStore(store_path, loaded).set_many([("red shoes", "p3", 2), ("blue boots", "p4", 1)])
    assert loaded.read_text() == before
    again = JudgmentStore(store_path, loaded)
    assert again.grades("red shoes") == {"p1": 3.0, "p2": 0.0, "p3": 2.0}
    assert again.grades("blue boots") == {"p4": 1.0}
    assert not list(store_path.parent.glob(".*tmp"))  # written through a temporary file, moved into place


def test_a_store_whose_grades_were_all_taken_back_reads_as_empty(tmp_path):
    store_path = tmp_path / "judgments.tsv"
    store = JudgmentStore(store_path)
    store.set("q", "a", 1)
    store.set("q", "a", None)
    assert store_path.read_text() == "query\titem_id\tgrade\n"
    assert JudgmentStore(store_path).judgments() == []


def test_the_export_is_read_back_by_dsr_eval_and_dsr_train_ranker(tmp_path, loaded):
    store = JudgmentStore(tmp_path / "wb.tsv", loaded)
    store.set("red shoes", "p2", 2)
    store.set('a "quoted" query, with comma', "p5", 1)
    exported = write(tmp_path / "exported.tsv", store.export())
    assert exported.read_text().splitlines()[0] == "query\titem_id\tgrade"

    rows, rejected = read_judgments(exported)  # dsr eval --judgments
    assert not rejected
    assert {(r.query, r.item_id, r.grade) for r in rows} == {
        ("boots", "p9", 1.5), ("red shoes", "p1", 3.0), ("red shoes", "p2", 2.0),
        ('a "quoted" query, with comma', "p5", 1.0)}
    catalog = write(tmp_path / "catalog.jsonl", "\n".join(json.dumps({"id": f"p{i}", "title": f"t{i}"})
                                                          for i in range(10)))
    dataset = load_generic(catalog, exported)
    assert dataset.split("all").judgments["red shoes"] == {"p1": to_gain(3), "p2": to_gain(2)}
    graded, report = read_graded(exported)  # dsr train ranker --judgments
    assert graded["boots"] == {"p9": 1.5} and not report.problems


@pytest.mark.parametrize(("query", "item_id", "grade", "message"), [
    ("", "p1", 1, "query"),
    ("red\tshoes", "p1", 1, "tabs"),
    ("red shoes", "p1\n", 1, "tabs"),
    ("red shoes", 7, 1, "item_id"),
    ("red shoes", "p1", float("nan"), "number"),
    ("red shoes", "p1", True, "number"),
    ("red shoes", "p1", -1, "from 0"),
    ("red shoes", "p1", "3", "number"),
])
def test_what_cannot_be_stored_is_refused_with_the_reason(query, item_id, grade, message):
    with pytest.raises(UsageError, match=message):
        check_judgment(query, item_id, grade)


def test_queries_are_trimmed_and_grades_kept_exactly():
    assert check_judgment("  red shoes ", " p1 ", 2) == ("red shoes", "p1", 2.0)
    assert check_judgment("red shoes", "p1", None) == ("red shoes", "p1", None)
    assert judgments_tsv([("q", "a", 2.0), ("q", "b", 1.25)]) == "query\titem_id\tgrade\nq\ta\t2\nq\tb\t1.25\n"
