"""Unlabelled queries written from titles: short spans of one title, reproducible, never a held-out query."""

from __future__ import annotations

from dsr.reranker.distill.title_queries import queries_from_titles
from dsr.text import tokenize

ITEMS = [{"id": str(i), "title": t} for i, t in enumerate([
    "Simpson Strong-Tie 12-Gauge Angle Bracket",
    "BEHR Premium Textured DeckOver 1-gal. Wood and Concrete Coating",
    "Delta Vero 1-Handle Shower Only Faucet Trim Kit in Chrome",
    "Whirlpool 1.9 cu. ft. Over the Range Convection Microwave in Stainless Steel",
    "Lamp",  # one word: never a query
])]


def test_each_query_is_two_to_four_consecutive_words_of_one_title():
    queries = queries_from_titles(ITEMS, 25, seed=3)
    assert len(queries) == len(set(queries)) == 25
    titles = [" ".join(tokenize(it["title"])) for it in ITEMS]
    for q in queries:
        assert 2 <= len(q.split()) <= 4
        assert any(f" {q} " in f" {t} " for t in titles), q
        assert q.split()[0] not in {"in", "and", "x"} and q.split()[-1] not in {"in", "and", "x"}


def test_the_same_seed_gives_the_same_queries_and_excluded_ones_never_appear():
    first = queries_from_titles(ITEMS, 10, seed=7)
    assert first == queries_from_titles(ITEMS, 10, seed=7)
    assert first != queries_from_titles(ITEMS, 10, seed=8)
    held_out = [*first[:3], "Angle Bracket"]
    again = queries_from_titles(ITEMS, 10, seed=7, exclude=held_out)
    assert not {"angle bracket", *first[:3]} & set(again)


def test_asking_for_more_queries_extends_the_earlier_list():
    # so a bigger augmentation resumes the smaller one's finished shards instead of redoing them
    assert queries_from_titles(ITEMS, 30, seed=2)[:12] == queries_from_titles(ITEMS, 12, seed=2)


def test_a_catalog_with_too_few_spans_gives_what_it_has():
    got = queries_from_titles([{"id": "1", "title": "red rubber boots"}], 50)
    assert sorted(got) == ["red rubber", "red rubber boots", "rubber boots"]
    assert queries_from_titles([{"id": "1", "title": "lamp"}], 5) == []
