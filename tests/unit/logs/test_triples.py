"""Training triples from sessions and from graded judgments."""

from __future__ import annotations

import pytest

from dsr.errors import InputError
from dsr.logs.judged import judged_triples, read_graded
from dsr.logs.records import Session
from dsr.logs.triples import TripleConfig, build_triples

ITEMS = [f"i{n}" for n in range(50)]


def _s(sid, query, shown, clicks=(), carts=(), orders=(), user="u1", ts=0.0):
    return Session(sid, query, user, ts, tuple(shown), tuple(clicks), tuple(carts), tuple(orders))


def test_orders_weigh_more_than_clicks_and_hard_negatives_were_shown_not_clicked():
    s = _s("s", "drill", ["i1", "i2", "i3"], clicks=["i1", "i2"], carts=["i2"], orders=["i2"])
    triples = build_triples([s], ITEMS, TripleConfig(negatives=("hard",)))
    weights = {t.positive: t.weight for t in triples}
    assert weights == {"i1": 1.0, "i2": 3.0}
    assert {t.negative for t in triples} == {"i3"} and {t.negative_kind for t in triples} == {"hard"}


def test_random_negatives_avoid_items_clicked_for_the_query():
    sessions = [_s(f"s{n}", "drill", ITEMS[:10], clicks=ITEMS[:5]) for n in range(20)]
    triples = build_triples(sessions, ITEMS[:6], TripleConfig(negatives=("random",), seed=3))
    assert triples and all(t.negative in ("i5", None) for t in triples)
    assert sum(t.negative == "i5" for t in triples) > len(triples) / 2
    assert all(t.negative_kind == "in_batch" for t in triples if t.negative is None)


def test_in_batch_kind_stores_no_negative_and_hard_falls_back_to_random():
    s = _s("s", "drill", ["i1"], clicks=["i1"])
    t_in, t_hard = build_triples([s], ITEMS, TripleConfig(negatives=("in_batch", "hard")))
    assert t_in.negative is None and t_in.negative_kind == "in_batch"
    assert t_hard.negative_kind == "random" and t_hard.negative not in (None, "i1")


def test_term_retrieved_but_never_clicked_items_are_hard_negatives():
    s = _s("s", "drill", ["i1"], clicks=["i1"])
    [t] = build_triples([s], ITEMS, TripleConfig(negatives=("hard",)), term_retriever=lambda q: ["i1", "i9"])
    assert (t.negative, t.negative_kind) == ("i9", "hard")


def test_recent_clicks_come_from_the_users_earlier_sessions():
    a = _s("a", "hammer", ["i7"], clicks=["i7"], ts=1.0)
    b = _s("b", "drill", ["i1", "i2"], clicks=["i1"], ts=2.0)
    triples = build_triples([b, a], ITEMS, TripleConfig(negatives=("hard",)))
    later = next(t for t in triples if t.query == "drill")
    assert later.recent_clicks == ("i7",) and later.user_id == "u1"


def test_logs_without_clicks_are_a_clear_error():
    with pytest.raises(InputError, match="no clicks"):
        build_triples([_s("s", "drill", ["i1"])], ITEMS)
    with pytest.raises(InputError, match="negative kinds"):
        TripleConfig(negatives=("nope",))


def test_judged_triples_use_poor_grades_as_hard_negatives(tmp_path):
    path = tmp_path / "j.tsv"
    path.write_text("query\titem_id\tgrade\ndrill\ti1\t3.0\ndrill\ti2\t1.33\ndrill\ti3\t2.33\n"
                    "drill\tnope\t3\nhammer\ti4\tx\n")
    graded, report = read_graded(path, known_items=set(ITEMS))
    assert graded == {"drill": {"i1": 3.0, "i2": 1.33, "i3": 2.33}}
    assert [p.line for p in report.problems] == [5, 6]
    triples = judged_triples(graded, ITEMS, random_negatives=1, seed=0)
    assert {t.positive for t in triples} == {"i1"}
    assert ("i2", "hard") in {(t.negative, t.negative_kind) for t in triples}
    assert all(t.negative not in ("i1", "i3") for t in triples)
    with pytest.raises(InputError):
        judged_triples({"q": {"i1": 1.0}}, ITEMS)
