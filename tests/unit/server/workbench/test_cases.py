"""Cases: named sets of queries, kept under the data dir across restarts."""

from __future__ import annotations

import pytest

from dsr.errors import UsageError
from dsr.server.workbench.cases import MAX_CASE_QUERIES, CaseStore


def test_a_case_is_saved_cleaned_and_found_again_after_a_restart(tmp_path):
    path = tmp_path / "workbench" / "cases.json"
    store = CaseStore(path)
    assert store.put(" long tail ", ["red shoes ", "", "blue boots", "red shoes"]) == ["red shoes", "blue boots"]
    store.put("head", ["sneakers"])
    again = CaseStore(path)
    assert again.all() == {"head": ["sneakers"], "long tail": ["red shoes", "blue boots"]}
    assert again.delete("head") and not again.delete("head")
    assert CaseStore(path).all() == {"long tail": ["red shoes", "blue boots"]}


@pytest.mark.parametrize(("name", "queries", "message"), [
    ("", ["q"], "name"),
    ("x" * 101, ["q"], "name"),
    ("ok", "red shoes", "list"),
    ("ok", [1, 2], "list"),
    ("ok", [f"q{n}" for n in range(MAX_CASE_QUERIES + 1)], "at most"),
])
def test_a_case_that_cannot_be_kept_is_refused(tmp_path, name, queries, message):
    with pytest.raises(UsageError, match=message):
        CaseStore(tmp_path / "cases.json").put(name, queries)


def test_a_broken_cases_file_stops_with_its_name(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text("{not json")
    with pytest.raises(UsageError, match=r"cases\.json"):
        CaseStore(path)
