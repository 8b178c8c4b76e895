"""`dsr search` on the embedded default: a readable table with the per-stage scores."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dsr.backends.base import IndexSpec
from dsr.backends.embedded import EmbeddedBackend
from dsr.cli import cli
from dsr.encoders.hashing import HashingEncoder
from dsr.sidecar import default_sidecar_dir
from dsr.sidecar.faiss_index import FaissIndex

ROWS = [
    {"id": "a1", "title": "red running sneakers", "brand": "acme", "price": 59.0},
    {"id": "b2", "title": "blue leather boots", "brand": "zenit", "price": 120.0},
    {"id": "c3", "title": "red sandals", "brand": "orbit", "price": 25.0},
    {"id": "d4", "title": "trail running shoes", "brand": "acme", "price": 89.5},
]


@pytest.fixture
def data_dir(tmp_path):
    """An embedded index `shop` and its sidecar where `dsr ingest` would put them."""
    backend = EmbeddedBackend(tmp_path / "embedded")
    backend.ensure_index(IndexSpec("shop"))
    assert backend.bulk_upsert("shop", ROWS).ok
    backend.refresh("shop")
    backend.close()
    sidecar = FaissIndex(16, kind="flat", device="cpu")
    sidecar.upsert([r["id"] for r in ROWS], HashingEncoder(16).encode_items(ROWS))
    sidecar.save(default_sidecar_dir(tmp_path, "shop"))
    return tmp_path


def test_search_prints_a_table_with_stage_scores(data_dir):
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "search", "red running sneakers",
                                      "--index", "shop", "--model", "hashing:16", "--explain", "--size", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["rank", "id", "title", "price", "score", "term", "vector", "fused", "rerank"]
    assert lines[1].split()[:2] == ["1", "a1"]  # matches every query word on both sides
    assert "red running sneakers" in lines[1] and "59.0" in lines[1] and "(#1)" in lines[1]
    assert "via sidecar" in result.output and "rrf fusion" in result.output


def test_search_json_lines_and_filters(data_dir):
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "search", "red", "--index", "shop",
                                      "--model", "hashing:16", "--json", "--filter", "brand=orbit"])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [h["id"] for h in hits] == ["c3"]
    assert set(hits[0]["stages"]) >= {"term", "fused"}


def test_search_with_a_mismatched_model_fails_with_one_clear_line(data_dir):
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "search", "red", "--index", "shop",
                                      "--model", "hashing:32"])
    assert result.exit_code != 0
    assert "dimensions" in str(result.exception)
