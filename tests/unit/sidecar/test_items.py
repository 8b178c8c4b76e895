"""Item records: the ranker's fields of each item, kept beside its vector and read back by id."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from dsr.errors import VectorIndexError
from dsr.sidecar.items import ItemRecords, records_path

FIELDS = ("title", "brand", "price")


def test_only_the_declared_fields_are_kept_and_read_back_by_id(tmp_path):
    records = ItemRecords.open(tmp_path, FIELDS)
    records.upsert([{"id": "a", "title": "red sneakers", "price": 12.5, "description": "long", "brand": None},
                    {"id": "b", "title": "blue boots", "brand": "acme"}])
    got = records.get_many(["a", "b", "missing"])
    assert got == {"a": {"id": "a", "title": "red sneakers", "price": 12.5},
                   "b": {"id": "b", "title": "blue boots", "brand": "acme"}}
    assert len(records) == 2 and sorted(records.ids()) == ["a", "b"]


def test_upserts_replace_and_deletes_remove(tmp_path):
    records = ItemRecords.open(tmp_path, FIELDS)
    records.upsert([{"id": "a", "title": "old"}, {"id": "b", "title": "kept"}])
    records.upsert([{"id": "a", "title": "new", "price": 3}])
    records.delete(["b", "never-there"])
    assert records.get_many(["a", "b"]) == {"a": {"id": "a", "title": "new", "price": 3}}


def test_lookups_of_more_ids_than_sqlite_takes_in_one_statement(tmp_path):
    records = ItemRecords.open(tmp_path, FIELDS)
    records.upsert({"id": f"p{i}", "title": f"t{i}"} for i in range(2500))
    ids = [f"p{i}" for i in range(0, 2500, 1)]
    assert len(records.get_many(ids)) == 2500
    records.delete(ids[:2000])
    assert len(records) == 500


def test_a_reopened_file_keeps_its_fields_and_declares_added_ones(tmp_path):
    ItemRecords.open(tmp_path, FIELDS).upsert([{"id": "a", "title": "t", "color": "red"}])
    again = ItemRecords.open(tmp_path)
    assert again.fields == FIELDS and again.get_many(["a"]) == {"a": {"id": "a", "title": "t"}}
    wider = ItemRecords.open(tmp_path, ("color",))
    assert wider.fields == (*FIELDS, "color")
    assert wider.covers(["title", "color"]) and not wider.covers(["title", "rating"])
    assert ItemRecords.open_existing(tmp_path / "elsewhere") is None


def test_a_foreign_or_newer_file_is_refused(tmp_path):
    records_path(tmp_path).write_bytes(b"not a database at all, just bytes" * 10)
    with pytest.raises(VectorIndexError, match="not a readable item records file"):
        ItemRecords.open(tmp_path)
    newer = tmp_path / "newer"
    ItemRecords.open(newer, FIELDS)
    with sqlite3.connect(records_path(newer)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(VectorIndexError, match="format 99"):
        ItemRecords.open(newer)


def test_serving_threads_read_while_ingest_writes(tmp_path):
    writer = ItemRecords.open(tmp_path, FIELDS)
    reader = ItemRecords.open(tmp_path)
    writer.upsert({"id": f"p{i}", "title": f"t{i}"} for i in range(100))
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                assert len(reader.get_many([f"p{i}" for i in range(100)])) == 100
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for n in range(20):
        writer.upsert([{"id": f"q{n}", "title": "new"}])
    for t in threads:
        t.join()
    assert not errors
    assert len(reader) == 120


def test_records_for_any_ranker_keep_every_scalar_field_but_the_large_ones(tmp_path):
    records = ItemRecords.open_for_every_scalar(tmp_path)
    records.upsert([{"id": "a", "title": "drill", "price": 12.5, "units_sold": "40", "in_stock": True,
                     "description": "long", "attributes": {"color": "red"}, "embedding": [0.1, 0.2], "ctr": None}])
    assert records.get_many(["a"]) == {"a": {"id": "a", "title": "drill", "price": 12.5, "units_sold": "40",
                                             "in_stock": True}}
    assert records.keeps_every_scalar and records.covers(["title", "price", "units_sold", "never_seen"])
    assert not records.covers(["title", "description"]) and not records.covers(["attributes"])


def test_a_field_some_item_holds_as_a_list_is_not_recorded_and_the_file_says_so(tmp_path):
    records = ItemRecords.open_for_every_scalar(tmp_path)
    records.upsert([{"id": "a", "title": "drill", "tags": "tools"}])
    assert records.covers(["tags"])
    records.upsert([{"id": "b", "title": "saw", "tags": ["tools", "wood"]}])
    assert not records.covers(["tags"])
    records.upsert([{"id": "c", "title": "axe", "tags": "garden"}])
    assert "tags" not in records.get_many(["c"])["c"]
    assert not ItemRecords.open_existing(tmp_path).covers(["tags"])  # a serving process reads the same


def test_records_of_declared_fields_opened_for_any_ranker_are_emptied_and_converted(tmp_path):
    ItemRecords.open(tmp_path, FIELDS).upsert([{"id": "a", "title": "t", "color": "red"}])
    converted = ItemRecords.open_for_every_scalar(tmp_path)
    assert converted.keeps_every_scalar and len(converted) == 0  # they could not stand in for every ranker
    converted.upsert([{"id": "a", "title": "t", "color": "red"}])
    again = ItemRecords.open(tmp_path, FIELDS)  # declaring fields does not narrow what the file keeps
    assert again.keeps_every_scalar and again.get_many(["a"])["a"]["color"] == "red"
