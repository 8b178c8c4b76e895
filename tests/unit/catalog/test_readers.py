"""Catalog readers: every physical row comes out, broken ones with a reason and their raw text."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsr.catalog.readers import detect_format, read_catalog
from dsr.errors import InputError, UsageError


def test_jsonl_rows_carry_line_numbers_and_broken_lines_a_reason(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"id": "a", "title": "A"}\n\n{broken\n[1, 2]\n'
                     b'{"id": "b", "title": "\xff"}\n{"id": "c", "title": "C"}\n')
    rows = list(read_catalog(path))
    assert [(r.line, r.data and r.data["id"]) for r in rows if r.error is None] == [(1, "a"), (6, "c")]
    errors = {r.line: r.error for r in rows if r.error}
    assert errors[3].startswith("invalid JSON")
    assert "not an object" in errors[4]
    assert errors[5].startswith("invalid UTF-8")
    assert rows[-1].position == path.stat().st_size


def test_csv_values_are_strings_attributes_json_and_empty_cells_absent(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,title,price,attributes\n1,"Red, big",9.5,"{""color"": ""red""}"\n2,Blue,,\n')
    rows = list(read_catalog(path))
    assert rows[0].data == {"id": "1", "title": "Red, big", "price": "9.5", "attributes": {"color": "red"}}
    assert rows[1].data == {"id": "2", "title": "Blue"}
    assert [r.line for r in rows] == [2, 3]


def test_csv_broken_quoting_rejects_one_line_and_keeps_the_rows_after_it(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,title\n1,"unterminated\n2,fine\n3,"also fine"\n')
    rows = list(read_catalog(path))
    broken = [r for r in rows if r.error]
    assert [(r.line, r.raw) for r in broken] == [(2, '1,"unterminated')]
    assert "broken CSV quoting" in broken[0].error
    assert [r.data for r in rows if r.data] == [{"id": "2", "title": "fine"}, {"id": "3", "title": "also fine"}]


def test_csv_multiline_quoted_field_is_one_row(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,title,description\n1,T,"line one\nline two"\n2,U,x\n')
    rows = list(read_catalog(path))
    assert rows[0].data["description"] == "line one\nline two" and rows[0].line == 2
    assert rows[1].line == 4


def test_csv_wrong_field_count_and_invalid_utf8(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"id,title\n1,a,extra\n2,\xfe\n3,ok\n")
    rows = list(read_catalog(path))
    assert rows[0].error.startswith("wrong number of fields")
    assert rows[1].error == "invalid UTF-8" and rows[1].raw == "2,\\xfe"
    assert rows[2].data == {"id": "3", "title": "ok"}


def test_csv_needs_an_id_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("sku,title\n1,a\n")
    with pytest.raises(InputError, match="'id'"):
        list(read_catalog(path))


def test_parquet_streams_rows_as_plain_json_values(tmp_path):
    path = tmp_path / "c.parquet"
    table = pa.table({"id": ["a", "b"], "title": ["A", "B"], "price": [1.5, None]})
    pq.write_table(table, path)
    rows = list(read_catalog(path))
    assert [r.data for r in rows] == [{"id": "a", "title": "A", "price": 1.5}, {"id": "b", "title": "B", "price": None}]
    assert [r.line for r in rows] == [1, 2]
    assert json.loads(rows[0].raw)["id"] == "a"


def test_format_from_extension_or_flag(tmp_path):
    assert detect_format(tmp_path / "x.ndjson") == "jsonl"
    assert detect_format(tmp_path / "x.txt", "csv") == "csv"
    with pytest.raises(UsageError, match="--format"):
        detect_format(tmp_path / "x.txt")
