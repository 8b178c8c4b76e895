"""A shop's search page built with Searchkit (@searchkit/api, from npm) answered hybrid by `dsr serve`.

Searchkit turns InstantSearch state (query, refinements, numeric filters, page, sort replica) into
the Elasticsearch requests a real shop front end sends: one `POST /_msearch` per page with facets as
`aggs`, refinements as `bool.filter` clauses, `from`/`size`, `_source.includes`, `highlight` and
`sort`. Pointed at `dsr serve` on an index the shop owns (its own mapping, configured hybrid), the
page must show what the cluster would compute over the hybrid candidates: facet counts of exactly
the hits, refinements applied to the vector side too, sort options, consistent pages, highlights.

The node script (tests/js/searchkit_search.mjs) runs the real library with `node`; `make test`
installs it (`npm ci --prefix tests/js`), this module never downloads anything.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dsr.backends.base import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.search.hybrid import HybridSearcher
from dsr.server import ServeSettings, create_app
from dsr.server.serve_config import ServedEntry
from dsr.settings import ConnectionSettings
from dsr.sidecar.faiss_index import FaissIndex

from ..support.shoes import CheapestFirst, catalog

DIM = 64
K = TERM_K = 20  # vector neighbours and term matches: at most 40 candidates of the 90 shoes
QUERY = "red sneakers"
SCRIPT = Path(__file__).resolve().parents[1] / "js" / "searchkit_search.mjs"
INSTALLED = SCRIPT.parent / "node_modules" / "@searchkit" / "api" / "package.json"

SHOP_MAPPING = {"properties": {
    "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
    "description": {"type": "text"},
    "brand": {"type": "keyword"},
    "category": {"type": "keyword"},
    "price": {"type": "float"},
}}
"""The shop's own mapping (not dsr's): plain keywords to facet on, no vector field in the index."""

SEARCHKIT_BODY_KEYS = {"aggs", "query", "size", "from", "_source", "highlight", "sort"}
"""The search body keys Searchkit 4.14 sends for the settings of the script (no kNN, no runtime fields)."""


@dataclass(frozen=True)
class Shop:
    url: str  # dsr serve
    cluster: str  # the engine itself
    index: str


@pytest.fixture(scope="module", params=["elasticsearch", "opensearch"])
def shop(request: pytest.FixtureRequest, serve_thread) -> Iterator[Shop]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Searchkit client runs on Node.js 20")
    assert INSTALLED.is_file(), "Searchkit is not installed: run `make tests/js/node_modules/.installed`"
    backend: SearchBackend = request.getfixturevalue({"elasticsearch": "es_backend",
                                                      "opensearch": "os_backend"}[request.param])
    index = f"dsr-e2e-searchkit-{uuid.uuid4().hex[:8]}"
    rows = catalog()
    try:
        created = httpx.put(f"{backend.url}/{index}", json={"mappings": SHOP_MAPPING}, timeout=30)
        assert created.status_code == 200, created.text
        lines = []
        for row in rows:
            lines += [json.dumps({"index": {"_index": index, "_id": row["id"]}}),
                      json.dumps({k: v for k, v in row.items() if k != "id"})]
        bulk = httpx.post(f"{backend.url}/_bulk", params={"refresh": "true"}, content="\n".join(lines) + "\n",
                          headers={"content-type": "application/x-ndjson"}, timeout=60)
        assert bulk.status_code == 200 and not bulk.json()["errors"], bulk.text[:500]
        encoder = HashingEncoder(DIM)
        sidecar = FaissIndex(DIM, kind="flat", device="cpu")
        sidecar.upsert([r["id"] for r in rows], encoder.encode_items(rows))
        # the depths of a given searcher are its own (the entry's are for the searchers dsr builds)
        searcher = HybridSearcher(backend, index, encoder, sidecar, CheapestFirst(), term_k=TERM_K, knn_k=K)
        settings = ServeSettings(ConnectionSettings(backend.url), index=index,
                                 entries=(ServedEntry(index, hybrid=True, k=K, term_k=TERM_K),))
        with serve_thread(create_app(settings, searcher=searcher)) as url:
            yield Shop(url, backend.url, index)
    finally:
        httpx.delete(f"{backend.url}/{index}", timeout=30)


def searchkit(url: str, index: str, **batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Each batch of InstantSearch requests run by Searchkit against `url`: its results and HTTP exchanges."""
    done = subprocess.run(["node", str(SCRIPT), url, index], input=json.dumps(batches), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    for name, batch in out.items():
        assert "error" not in batch, f"{name}: {batch['error']}"
    return out


def search(**params: Any) -> dict[str, Any]:
    """An InstantSearch request of the shop's search page: every facet, the text, 100 hits per page."""
    return {"params": {"query": QUERY, "facets": ["*"], "hitsPerPage": 100, **params}}


def sent_body(batch: dict[str, Any], n: int = 0) -> dict[str, Any]:
    """The search body of the `n`th search of the (one) `_msearch` Searchkit sent for a batch."""
    (exchange,) = batch["exchanges"]
    return exchange["sent"]["lines"][2 * n + 1]


def cluster_search(shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{shop.cluster}/{shop.index}/_search", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def term_top(shop: Shop, body: dict[str, Any]) -> set[str]:
    """The ids of the cluster's own top `TERM_K` for the shop's query of `body` (the term side)."""
    hits = cluster_search(shop, {"query": body["query"], "size": TERM_K, "_source": False})["hits"]["hits"]
    return {h["_id"] for h in hits}


def counts(hits: list[dict[str, Any]], field: str) -> dict[str, int]:
    return dict(Counter(str(h[field]) for h in hits))


def test_facet_counts_are_the_clusters_over_the_hybrid_hits(shop):
    out = searchkit(shop.url, shop.index, page=[search()])
    (result,) = out["page"]["results"]
    hits = result["hits"]
    # every candidate is on the one page: the facets count exactly these hits
    assert 0 < len(hits) == result["nbHits"] <= K + TERM_K
    assert result["facets"]["brand"] == counts(hits, "brand")
    assert result["facets"]["category"] == counts(hits, "category")
    prices = [h["price"] for h in hits]
    stats = result["facets_stats"]["price"]
    assert (stats["min"], stats["max"]) == (min(prices), max(prices))
    assert stats["sum"] == pytest.approx(sum(prices))
    by_price = Counter(float(p) for p in prices)  # a terms facet of its 10 most frequent prices
    assert len(result["facets"]["price"]) == min(10, len(by_price))
    assert all(by_price[float(p)] == n for p, n in result["facets"]["price"].items())
    # not the cluster's own counts: those are of its matches, and neighbours that do not match are among the hits
    plain = cluster_search(shop, {**sent_body(out["page"]), "size": len(catalog()), "_source": False})
    assert {h["objectID"] for h in hits} - {h["_id"] for h in plain["hits"]["hits"]}
    assert {b["key"]: b["doc_count"] for b in plain["aggregations"]["brand"]["buckets"]} != result["facets"]["brand"]


def test_refinements_filter_term_and_vector_hits(shop):
    refined = search(facetFilters=[["brand:acme"]], numericFilters=["price>=70"])
    # InstantSearch's second request: the brand facet without its own refinement (disjunctive facet)
    others = {"params": {"query": QUERY, "facets": ["brand"], "hitsPerPage": 0, "numericFilters": ["price>=70"]}}
    out = searchkit(shop.url, shop.index, page=[refined, others])
    result, brand_facet = out["page"]["results"]
    hits = result["hits"]
    assert hits and all(h["brand"] == "acme" and h["price"] >= 70 for h in hits)
    # neighbours the shop's query does not rank in its top (vector-only) are filtered too
    vector_only = [h for h in hits if h["objectID"] not in term_top(shop, sent_body(out["page"]))]
    assert vector_only and all(h["brand"] == "acme" and h["price"] >= 70 for h in vector_only)
    assert result["facets"]["brand"] == {"acme": len(hits)}
    assert result["facets"]["category"] == counts(hits, "category")
    # the unrefined brand facet: every brand of its own candidates, counted as its hits total
    assert set(brand_facet["facets"]["brand"]) == {"acme", "zenit", "orbit"}
    assert sum(brand_facet["facets"]["brand"].values()) == brand_facet["nbHits"] <= K + TERM_K
    assert brand_facet["hits"] == []


def test_vector_neighbours_are_among_the_hits(shop):
    out = searchkit(shop.url, shop.index, page=[search()])
    ids = {h["objectID"] for h in out["page"]["results"][0]["hits"]}
    top = term_top(shop, sent_body(out["page"]))
    assert top <= ids  # the term side's whole top ...
    assert ids - top  # ... and neighbours beyond it: the answer is hybrid


def test_sort_options_order_the_hits(shop):
    out = searchkit(shop.url, shop.index, relevance=[search()], by_price=[{**search(), "sort": "price_desc"}],
                    by_brand=[{**search(), "sort": "brand_price"}])
    relevance, by_price, by_brand = (out[n]["results"][0] for n in ("relevance", "by_price", "by_brand"))
    assert sent_body(out["by_price"])["sort"] == {"price": "desc"}
    assert sent_body(out["by_brand"])["sort"] == [{"brand": "asc"}, {"price": "asc"}]
    assert out["by_price"]["exchanges"][0]["sent"]["lines"][0] == {"index": shop.index}  # the replica's base
    prices = [h["price"] for h in by_price["hits"]]
    assert prices == sorted(prices, reverse=True)
    pairs = [(h["brand"], h["price"]) for h in by_brand["hits"]]
    assert pairs == sorted(pairs)
    # a sort orders the same candidates
    ids = {h["objectID"] for h in relevance["hits"]}
    assert {h["objectID"] for h in by_price["hits"]} == ids == {h["objectID"] for h in by_brand["hits"]}
    assert relevance["nbHits"] == by_price["nbHits"] == by_brand["nbHits"]
    # the relevance order is the hybrid order (the ranker here puts the cheapest first)
    assert [h["price"] for h in relevance["hits"]] == sorted(h["price"] for h in relevance["hits"])


def test_pages_continue_each_other(shop):
    page = {"query": QUERY, "facets": ["*"], "hitsPerPage": 5}
    out = searchkit(shop.url, shop.index, first=[{"params": {**page, "page": 0}}],
                    second=[{"params": {**page, "page": 1}}], both=[{"params": {**page, "hitsPerPage": 10}}])
    first, second, both = (out[n]["results"][0] for n in ("first", "second", "both"))
    assert (sent_body(out["second"])["from"], sent_body(out["second"])["size"]) == (5, 5)
    ids = [h["objectID"] for h in first["hits"] + second["hits"]]
    assert len(ids) == 10 and ids == [h["objectID"] for h in both["hits"]]
    assert first["nbHits"] == second["nbHits"] == both["nbHits"] > 10
    assert first["nbPages"] == second["nbPages"] == math.ceil(first["nbHits"] / 5)
    assert first["facets"] == second["facets"] == both["facets"]


def test_highlights_mark_the_shoppers_words_in_titles(shop):
    out = searchkit(shop.url, shop.index, page=[search(highlightPreTag="<mark>", highlightPostTag="</mark>")])
    hits = out["page"]["results"][0]["hits"]
    words = set(QUERY.split())
    for h in hits:
        title = h["_highlightResult"]["title"]
        matched = words & set(h["title"].split())
        if matched:  # adjacent words may come as one span ("<mark>red sneakers</mark>")
            marked = " ".join(re.findall("<mark>(.*?)</mark>", title["value"])).split()
            assert title["matchLevel"] == "full" and set(marked) == matched, h
            assert set(" ".join(title["matchedWords"]).split()) == matched
            assert title["value"].replace("<mark>", "").replace("</mark>", "") == h["title"]
        else:  # a neighbour without the shopper's words: its title as it is
            assert title == {"matchLevel": "none", "matchedWords": [], "value": h["title"]}
    assert any(h["_highlightResult"]["title"]["matchLevel"] == "none" for h in hits)


def test_what_searchkit_sends_and_how_dsr_answers_it(shop):
    out = searchkit(shop.url, shop.index, page=[search(facetFilters=[["brand:acme"]], page=1, hitsPerPage=3)],
                    browse=[{"params": {"query": "", "facets": ["*"], "hitsPerPage": 5}}])
    (exchange,) = out["page"]["exchanges"]
    sent = exchange["sent"]
    assert (sent["method"], sent["url"]) == ("POST", f"{shop.url}/_msearch")  # no index, no URL parameters
    assert sent["headers"] == {"content-type": "application/json"}
    header, body = sent["lines"]
    assert header == {"index": shop.index}
    assert set(body) == SEARCHKIT_BODY_KEYS - {"sort"}
    assert body["_source"] == {"includes": ["title", "description", "brand", "category", "price"]}
    assert body["highlight"] == {"pre_tags": ["<em>"], "post_tags": ["</em>"],
                                 "fields": {"title": {"number_of_fragments": 0}}}
    assert body["query"]["bool"]["filter"] == [{"bool": {"should": [{"term": {"brand": "acme"}}]}}]
    assert exchange["answer"]["status"] == 200 and exchange["answer"]["headers"]["x-dsr-path"] == "hybrid"
    # a browse page without text is the shop's plain search: the cluster's own answer, every shoe
    (browse,) = out["browse"]["exchanges"]
    assert browse["answer"]["status"] == 200 and "x-dsr-path" not in browse["answer"]["headers"]
    assert out["browse"]["results"][0]["nbHits"] == len(catalog())
