"""Columns side by side: how far a hit moved against the other columns, what only one column shows, pictures."""

from __future__ import annotations

from dsr.server.workbench.compare import Move, image_url, moves, only_here

RANKINGS = [["a", "b", "c", "d"], ["c", "a", "e", "b"], ["f", "a"]]


def test_a_move_is_the_place_there_minus_the_place_here():
    assert moves(RANKINGS, 0, "c", 3) == [Move(1, 1, -2), Move(2, None, None)]  # lower here than in column 1
    assert moves(RANKINGS, 1, "b", 4) == [Move(0, 2, -2), Move(2, None, None)]
    assert moves(RANKINGS, 2, "a", 2) == [Move(0, 1, -1), Move(1, 2, 0)]
    assert moves(RANKINGS, 1, "e", 3)[0] == Move(0, None, None)


def test_only_here_looks_at_what_the_other_columns_show():
    assert only_here(RANKINGS, 0, 4) == {"d"}
    assert only_here(RANKINGS, 1, 4) == {"e"}
    assert only_here(RANKINGS, 2, 4) == {"f"}
    assert only_here(RANKINGS, 0, 1) == {"a"}  # the others show only their first place: c and f
    assert only_here(RANKINGS, 1, 1) == {"c"}
    assert only_here([["a", "b"]], 0, 2) == set()  # one column: nothing to compare with


def test_a_picture_is_shown_only_from_an_http_url():
    assert image_url({"image": "https://cdn.example/p1.jpg"}) == "https://cdn.example/p1.jpg"
    assert image_url({"images": ["http://cdn.example/a.png", "x"]}) == "http://cdn.example/a.png"
    assert image_url({"thumbnail": {"url": "https://cdn.example/t.png"}}) == "https://cdn.example/t.png"
    for hostile in ("javascript:alert(1)", "data:image/png;base64,AAAA", " JAVASCRIPT:x", "//evil.example/x", ""):
        assert image_url({"image": hostile}) is None, hostile
    assert image_url({"title": "no picture"}) is None
