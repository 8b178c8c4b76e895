"""The query-level split is deterministic and keeps every query on one side."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr.eval.dataset import Split, datasets_root, hash_split


def test_hash_split_is_pinned_and_ignores_case_and_outer_spaces() -> None:
    # pinned values: a change of the hash would silently move queries between train and dev
    assert hash_split("wine rack") == "train"
    assert hash_split("Wine Rack ") == "train"
    assert [hash_split(f"query {i}") for i in range(8)] == [hash_split(f"QUERY {i}") for i in range(8)]


def test_hash_split_gives_roughly_the_requested_dev_share() -> None:
    sides = [hash_split(f"product query number {i}") for i in range(3000)]
    assert 0.25 < sides.count("dev") / len(sides) < 0.35


def test_hash_split_is_the_same_in_another_process() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "from dsr.eval.dataset import hash_split;"
                          "print(','.join(hash_split(f'q{i}') for i in range(20)))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == ",".join(hash_split(f"q{i}") for i in range(20))


def test_sample_is_deterministic_and_a_subset() -> None:
    split = Split({f"q{i}": {"a": 1} for i in range(100)})
    a, b = split.sample(10), split.sample(10)
    assert a.queries == b.queries and len(a) == 10
    assert set(a.queries) <= set(split.queries)
    assert split.sample(None) is split and split.sample(1000) is split


def test_datasets_root_honours_the_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DSR_DATASETS", str(tmp_path))
    assert datasets_root() == tmp_path
