"""Loaders on the real public sets in ../shared/datasets (read in place, never copied into the repo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsr.errors import UsageError
from dsr.eval.dataset import datasets_root, hash_split
from dsr.eval.judgments import GAIN_SCALE
from dsr.eval.loaders import load_dataset, load_generic


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        path = datasets_root()
    except UsageError:
        pytest.skip("the shared datasets folder is not present on this machine")
    return path


def test_homedepot_keeps_the_shipped_query_split_and_maps_grade_minus_one(root: Path) -> None:
    ds = load_dataset("homedepot", root)
    assert len(ds.split("train")) == 7113 and len(ds.split("dev")) == 2383  # as SOURCE.md states
    assert not set(ds.split("train").judgments) & set(ds.split("dev").judgments)
    # dev row "4*8 beadboard paneling  100019  2.67": gain (2.67 - 1) on the 1/12 scale
    assert ds.split("dev").judgments["4*8 beadboard paneling"]["100019"] == round(1.67 * GAIN_SCALE)
    first = next(ds.items())
    assert first == {"id": "100001", "title": "Simpson Strong-Tie 12-Gauge Angle"}


def test_homedepot_lowest_grade_is_judged_but_not_relevant(root: Path) -> None:
    dev = load_dataset("homedepot", root).split("dev").judgments
    gains = [g for judged in dev.values() for g in judged.values()]
    assert min(gains) == 0 and max(gains) == 2 * GAIN_SCALE


def test_crowdflower_grades_one_to_four_become_gains_zero_to_three(root: Path) -> None:
    ds = load_dataset("crowdflower", root)
    assert len(ds.split("train")) == 148 and len(ds.split("dev")) == 51
    dev = ds.split("dev").judgments
    assert dev["wine rack"]["2fac2aa4b94a"] == 3 * GAIN_SCALE  # grade 4
    assert dev["bridal shower decorations"]["cffd4a083c19"] == 0  # grade 1
    item = next(ds.items())
    assert {"id", "title", "description"} <= set(item)


def test_bestbuy_clicks_become_judgments_of_the_dev_split(root: Path) -> None:
    ds = load_dataset("bestbuy-small", root)
    judged = ds.split("dev").judgments["kinect games"]  # "Kinect games" typed; queries are lower-cased
    assert set(judged) == {"2897073", "2897116", "2897055", "2823899", "2802508", "3455398", "2856544",
                           "2032076", "3508275"}
    assert set(judged.values()) == {GAIN_SCALE}
    assert len(ds.sessions["dev"]) == 4237 and len(ds.sessions["train"]) == 29655
    assert any("not in the catalog" in n for n in ds.notes)  # dropped clicks are reported, not hidden


def test_esci_has_judgments_and_logs_but_no_catalog(root: Path) -> None:
    ds = load_dataset("esci-ubi", root)
    assert not ds.has_catalog
    with pytest.raises(UsageError, match="no product text"):
        ds.items()
    q = "t towels kitchen"
    side = ds.split(hash_split(q)).judgments[q]
    assert side["B07NCQWCQS"] == 3 * GAIN_SCALE  # rating 100 = Exact
    assert side["B07QLRTGVQ"] == 2 * GAIN_SCALE  # rating 10 = Substitute
    assert ds.log_paths[0].name == "ubi_queries_events.ndjson"
    assert len(ds.split("train")) + len(ds.split("dev")) == 150


def test_unknown_dataset_names_the_known_ones(root: Path) -> None:
    with pytest.raises(UsageError, match="homedepot"):
        load_dataset("nope", root)


def test_generic_loader_on_a_real_homedepot_slice(root: Path, tmp_path: Path) -> None:
    lines = (root / "homedepot" / "products.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    ids = {json.loads(line)["id"] for line in lines}
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = [r.split("\t") for r in (root / "homedepot" / "judgments.dev.tsv").read_text().splitlines()[1:]]
    kept = [r for r in rows if r[1] in ids]
    judgments = tmp_path / "judgments.tsv"
    judgments.write_text("query\titem_id\tgrade\n" + "".join(f"{q}\t{i}\t{g}\n" for q, i, g in kept)
                         + "broken line\tonly two\n", encoding="utf-8")
    ds = load_generic(catalog, judgments)
    assert len(ds.split("all")) == len({r[0] for r in kept})
    assert len(ds.split("train")) + len(ds.split("dev")) == len(ds.split("all"))
    assert any("is not a number" in n for n in ds.notes)  # the bad line is reported with its reason
    assert sum(1 for _ in ds.items()) == 300
