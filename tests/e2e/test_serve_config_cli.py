"""`dsr serve --config FILE` (and `--index ... --hybrid-by-default`) run as the command itself, in a subprocess.

The shoe catalog is written to a real cluster by `dsr ingest --model hashing:64` (the index and its
sidecar where ingest puts them); a configuration beside the data names that index with `hybrid = true`,
the same model and the sidecar ingest wrote (a path relative to the configuration's folder). The
shop's own request, without `ext.dsr`, must then come back hybrid with the cluster's facets and
highlights over the candidates; a request without a shopper's text is the cluster's own answer, said
so in `X-Dsr-Path`/`X-Dsr-Reason`; a bad configuration stops the command with exit code 2 and one
line naming the key.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from dsr.backends.base import SearchBackend
from dsr.cli import cli
from dsr.engines import free_port

from ..support.shoes import catalog

MODEL = "hashing:64"
TERM_K = 10
KNN_K = 5
DSR = Path(sys.executable).with_name("dsr")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
ROWS = {r["id"]: r for r in catalog()}

SHOP_REQUEST: dict[str, Any] = {
    "query": {"bool": {"must": [{"multi_match": {"query": "red sneakers", "fields": ["title", "description"]}}],
                       "filter": [{"range": {"price": {"gte": 70}}}]}},
    "aggs": {"brands": {"terms": {"field": "brand"}}, "categories": {"terms": {"field": "category"}}},
    "highlight": {"fields": {"title": {}}},
    "size": 5,
}
"""A shop's own search: the shopper's text, a price filter, two facets and highlighted titles."""

NO_TEXT = {"query": {"bool": {"filter": [{"term": {"brand": "acme"}}]}}, "size": 3, "sort": [{"price": "asc"}]}
"""A shop's browse page: a filter and a sort, no shopper's text."""


@dataclass(frozen=True)
class Ingested:
    """The shoe catalog in `index` on `cluster`, written by `dsr ingest` with its data under `data_dir`."""

    cluster: SearchBackend
    url: str
    index: str
    data_dir: Path

    def dsr(self, *args: str) -> list[str]:
        return [str(DSR), "--engine", self.url, "--data-dir", str(self.data_dir), *args]

    def config(self, text: str, name: str) -> Path:
        """A configuration file in the data folder, so its relative paths are read from there."""
        path = self.data_dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def direct(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}/{self.index}/_search", json=body, timeout=60)


@pytest.fixture(scope="module", params=["elasticsearch", "opensearch"])
def ingested(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    cluster: SearchBackend = request.getfixturevalue({"elasticsearch": "es_backend",
                                                     "opensearch": "os_backend"}[request.param])
    url: str = cluster.url
    data_dir = tmp_path_factory.mktemp("data")
    catalog_file = data_dir / "catalog.jsonl"
    catalog_file.write_text("".join(json.dumps(r) + "\n" for r in ROWS.values()), encoding="utf-8")
    index = f"dsr-e2e-config-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(cli, ["--engine", url, "--data-dir", str(data_dir), "ingest", str(catalog_file),
                                      "--index", index, "--model", MODEL, "--quiet"])
    try:
        assert result.exit_code == 0, result.output
        assert (data_dir / "sidecar" / index).is_dir()
        yield Ingested(cluster, url, index, data_dir)
    finally:
        cluster.delete_index(index)


@contextlib.contextmanager
def serving(ingested: Ingested, *args: str) -> Iterator[str]:
    """`dsr serve ARGS` in a subprocess until the block ends; its URL once it answers."""
    port = free_port()
    log = ingested.data_dir / f"serve-{port}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(ingested.dsr("serve", *args, "--port", str(port)), stdout=subprocess.DEVNULL,
                                stderr=err, env=ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/_dsr/stats", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "dsr serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def toml_config(ingested: Ingested) -> str:
    return (f'[[index]]\nname = "{ingested.index}"\nhybrid = true\nmodel = "{MODEL}"\n'
            f'sidecar = "sidecar/{ingested.index}"\nk = {KNN_K}\nterm_k = {TERM_K}\n')


def yaml_config(ingested: Ingested) -> str:
    return (f"index:\n  - name: {ingested.index}\n    hybrid: true\n    model: \"{MODEL}\"\n"
            f"    sidecar: sidecar/{ingested.index}\n    k: {KNN_K}\n    term_k: {TERM_K}\n")


def search(url: str, index: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/{index}/_search", json=body, timeout=60)


def assert_hybrid_shop_answer(r: httpx.Response, ingested: Ingested) -> None:
    """The shop's request answered hybrid: the cluster's facets over the candidates, highlights, the filter kept."""
    assert r.status_code == 200, r.text
    assert r.headers["x-dsr-path"] == "hybrid", r.headers.get("x-dsr-reason")
    assert "x-dsr-reason" not in r.headers
    out = r.json()
    hits = out["hits"]["hits"]
    assert len(hits) == 5
    assert all(ROWS[h["_id"]]["price"] >= 70 for h in hits)  # the shop's filter, on both sides
    scores = [h["_score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and out["hits"]["max_score"] == scores[0]
    assert any("<em>" in " ".join(h.get("highlight", {}).get("title", [])) for h in hits)
    brands = out["aggregations"]["brands"]["buckets"]
    counted = sum(b["doc_count"] for b in brands)  # one brand per item: the facet counts the candidates
    assert counted == out["hits"]["total"]["value"]
    assert sum(b["doc_count"] for b in out["aggregations"]["categories"]["buckets"]) == counted
    # the candidates (at most the term side's and the vector side's depths), not every match on the cluster
    every_match = ingested.direct({**SHOP_REQUEST, "size": 0}).json()["hits"]["total"]["value"]
    assert 5 <= counted <= TERM_K + KNN_K < every_match


@pytest.fixture(scope="module")
def configured(ingested: Ingested) -> Iterator[str]:
    """`dsr serve --config serve.toml` on the ingested index: its URL."""
    with serving(ingested, "--config", str(ingested.config(toml_config(ingested), "serve.toml"))) as url:
        yield url


def test_a_toml_configuration_answers_the_shops_own_request_hybrid(ingested, configured):
    assert_hybrid_shop_answer(search(configured, ingested.index, SHOP_REQUEST), ingested)


def test_a_request_without_text_is_the_clusters_own_answer_and_says_why(ingested, configured):
    r = search(configured, ingested.index, NO_TEXT)  # nothing to encode
    assert r.status_code == 200, r.text
    assert r.headers["x-dsr-path"] == "passthrough"
    assert "no shopper's text" in r.headers["x-dsr-reason"]
    assert r.json()["hits"] == ingested.direct(NO_TEXT).json()["hits"]


def msearch(url: str, lines: list[dict[str, Any]], index: str | None = None) -> httpx.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx.post(f"{url}/{index}/_msearch" if index else f"{url}/_msearch", content=body,
                      headers={"content-type": "application/x-ndjson"}, timeout=60)


def test_msearch_answers_the_configured_entries_hybrid_and_the_rest_by_the_cluster(ingested, configured):
    opted_out = {**SHOP_REQUEST, "ext": {"dsr": {"enabled": False}}}
    r = msearch(configured, [{"index": ingested.index}, SHOP_REQUEST, {}, NO_TEXT, {}, opted_out], ingested.index)
    assert r.status_code == 200, r.text
    assert r.headers["x-dsr-path"] == "hybrid"
    hybrid, browse, plain = r.json()["responses"]
    assert hybrid["status"] == 200 and hybrid["aggregations"]["brands"]["buckets"]
    assert len(hybrid["hits"]["hits"]) == 5
    assert browse["status"] == 200 and browse["hits"] == ingested.direct(NO_TEXT).json()["hits"]
    direct = ingested.direct(SHOP_REQUEST).json()
    assert plain["status"] == 200 and plain["hits"] == direct["hits"]  # the cluster's, without ext.dsr


def test_an_msearch_of_only_opted_out_entries_reaches_the_cluster_without_ext_dsr(ingested, configured):
    opted_out = {**SHOP_REQUEST, "ext": {"dsr": {"enabled": False}}}
    r = msearch(configured, [{"index": ingested.index}, opted_out])
    assert r.status_code == 200, r.text
    (answer,) = r.json()["responses"]
    assert answer["status"] == 200, answer
    assert answer["hits"] == ingested.direct(SHOP_REQUEST).json()["hits"]


def test_a_yaml_configuration_works_the_same(ingested):
    with serving(ingested, "--config", str(ingested.config(yaml_config(ingested), "serve.yaml"))) as url:
        assert_hybrid_shop_answer(search(url, ingested.index, SHOP_REQUEST), ingested)


def test_hybrid_by_default_makes_the_plain_searches_of_index_hybrid(ingested):
    with serving(ingested, "--index", ingested.index, "--model", MODEL, "--hybrid-by-default") as url:
        r = search(url, ingested.index, SHOP_REQUEST)
        assert r.status_code == 200, r.text
        assert r.headers["x-dsr-path"] == "hybrid", r.headers.get("x-dsr-reason")
        out = r.json()
        assert out["aggregations"]["brands"]["buckets"]
        assert any("highlight" in h for h in out["hits"]["hits"])
        assert search(url, ingested.index, NO_TEXT).headers["x-dsr-path"] == "passthrough"


def test_without_hybrid_by_default_plain_searches_pass_through_untouched(ingested):
    with serving(ingested, "--index", ingested.index, "--model", MODEL) as url:
        r = search(url, ingested.index, SHOP_REQUEST)
        assert r.status_code == 200, r.text
        assert "x-dsr-path" not in r.headers and "x-dsr-reason" not in r.headers
        direct = ingested.direct(SHOP_REQUEST).json()
        assert r.json()["hits"] == direct["hits"] and r.json()["aggregations"] == direct["aggregations"]
        # ext.dsr still asks for a hybrid answer
        asked = search(url, ingested.index, {**SHOP_REQUEST, "ext": {"dsr": {}}})
        assert asked.status_code == 200, asked.text
        assert asked.headers["x-dsr-path"] == "hybrid"


def run_dsr(ingested: Ingested, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ingested.dsr(*args), capture_output=True, text=True, env=ENV, timeout=120)


def test_a_configuration_with_an_unknown_key_stops_the_command_naming_it(ingested):
    bad = ingested.config(toml_config(ingested) + "rerank_depth = 10\n", "bad.toml")
    done = run_dsr(ingested, "serve", "--config", str(bad), "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert "rerank_depth" in done.stderr and "[[index]] entry 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_and_index_together_are_a_usage_error(ingested):
    good = ingested.config(toml_config(ingested), "serve.toml")
    done = run_dsr(ingested, "serve", "--config", str(good), "--index", ingested.index, "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert "give either --config or --index" in done.stderr
    assert "Traceback" not in done.stderr


def stages(hit: dict[str, Any]) -> dict[str, float]:
    """The first-stage sides (`term`, `vector`) of a hit's hybrid explanation, with their scores."""
    fused = hit["_explanation"]["details"][0]
    return {d["description"].split(" ")[0]: d["value"] for d in fused["details"]}


def test_min_score_applies_to_the_term_side_and_not_to_the_neighbours(ingested, configured):
    body = {**SHOP_REQUEST, "size": 50, "_source": False, "explain": True}
    term_scores = [h["_score"] for h in ingested.direct({"query": SHOP_REQUEST["query"], "size": 50}).json()
                   ["hits"]["hits"]]
    min_score = sorted(term_scores)[len(term_scores) // 2]  # about half the term matches reach it
    without = search(configured, ingested.index, body)
    with_min = search(configured, ingested.index, {**body, "min_score": min_score})
    assert without.status_code == with_min.status_code == 200, with_min.text
    assert with_min.headers["x-dsr-path"] == "hybrid"
    hits = with_min.json()["hits"]["hits"]
    assert all(ROWS[h["_id"]]["price"] >= 70 for h in hits)
    assert all(stages(h)["term"] >= min_score for h in hits if "term" in stages(h))
    neighbours = {h["_id"] for h in without.json()["hits"]["hits"] if "vector" in stages(h)}
    assert neighbours
    # the neighbours pass the shop's filter whatever the term side's scores
    assert {h["_id"] for h in hits if "vector" in stages(h)} == neighbours
