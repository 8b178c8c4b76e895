"""`_msearch` bodies: pairs of header and search read as the engines read them, or left to the cluster whole.

What dsr cannot read (an odd number of lines, a line that is not a JSON object, a duplicate key) is
None: the cluster answers the request as it came, in its own words. The cluster's part of a batch
is sent as the original lines, byte for byte.
"""

from __future__ import annotations

import json

import pytest

from dsr.server.msearch import MsearchEntry, assemble, cluster_part, read_msearch

SEARCH = b'{"query":{"multi_match":{"query":"red sneakers"}},"size":5}'


def test_pairs_of_header_and_search_are_read_in_order():
    body = b'{"index":"products"}\n' + SEARCH + b'\n{"index":"archive","preference":"x"}\n{"size":0}\n'
    first, second = read_msearch(body, None)
    assert first.header == {"index": "products"} and first.target == "products"
    assert first.body == json.loads(SEARCH)
    assert second.header == {"index": "archive", "preference": "x"} and second.target == "archive"
    assert second.body == {"size": 0}


def test_an_empty_header_searches_the_urls_index():
    (entry,) = read_msearch(b"{}\n" + SEARCH + b"\n", "products")
    assert entry.header == {} and entry.target == "products"
    (entry,) = read_msearch(b"\n" + SEARCH + b"\n", "products")  # an empty header line is a header too
    assert entry.header == {} and entry.target == "products"


def test_a_header_index_wins_over_the_urls():
    (entry,) = read_msearch(b'{"index":"archive"}\n' + SEARCH + b"\n", "products")
    assert entry.target == "archive"


def test_without_an_index_anywhere_there_is_no_target():
    (entry,) = read_msearch(b"{}\n" + SEARCH + b"\n", None)
    assert entry.target is None


@pytest.mark.parametrize("index, target", [
    (["products"], "products"), (["products", "archive"], None), ([], None), ("", None), (3, None),
])
def test_a_list_index_of_one_name_is_that_name_any_other_is_no_one_target(index, target):
    header = json.dumps({"index": index}).encode()
    (entry,) = read_msearch(header + b"\n" + SEARCH + b"\n", None)
    assert entry.target == target


def test_the_trailing_newline_may_be_left_out():
    assert read_msearch(b"{}\n" + SEARCH, "products") == read_msearch(b"{}\n" + SEARCH + b"\n", "products")


def test_an_empty_search_line_is_an_empty_search():
    (entry,) = read_msearch(b'{"index":"products"}\n\n', None)
    assert entry.body == {}


@pytest.mark.parametrize("body", [
    b"",
    b"\n",
    b"{}\n",  # a header without its search
    b"{}\n" + SEARCH + b"\n{}\n",
    b"{}\n{\"query\": \n",  # not JSON
    b"[]\n" + SEARCH + b"\n",  # a header that is not an object
    b"{}\n[1, 2]\n",  # a search that is not an object
    b'{"index":"products"}\n{"size":1,"size":2}\n',  # a duplicate key
    b'{"index":"products","index":"archive"}\n' + SEARCH + b"\n",
    b"{}\n{\"size\": NaN}\n",
], ids=["empty", "newline", "header-only", "odd-lines", "bad-json", "header-list", "search-list",
        "duplicate-in-search", "duplicate-in-header", "nan"])
def test_a_body_dsr_cannot_read_is_none_for_the_cluster_to_answer(body):
    assert read_msearch(body, "products") is None


def test_each_entry_keeps_its_lines_as_they_came():
    header = b'{ "index" : "products" }'
    search = b'{"query":  {"match": {"title": "caf\\u00e9"}}}'
    (entry,) = read_msearch(header + b"\n" + search, None)
    assert entry.lines == header + b"\n" + search + b"\n"


def test_the_clusters_part_is_the_original_bytes_of_its_entries_in_order():
    lines = [b'{"index": "a"}', b'{"size":1}', b'{}', b'{"query":{"term":{"brand":"acme"}}}', b'{"index":"c"}',
             b'{ "size" : 3 }']
    entries = read_msearch(b"\n".join(lines) + b"\n", "b")
    assert entries is not None
    assert cluster_part([entries[0], entries[2]]) == b"\n".join(lines[:2] + lines[4:]) + b"\n"
    assert cluster_part(entries) == b"\n".join(lines) + b"\n"
    assert cluster_part([]) == b""


def test_header_keys_other_than_index_are_the_entrys_url_parameters():
    entry = MsearchEntry({"index": "p", "preference": "_local", "request_cache": True, "expand_wildcards":
                          ["open", "hidden"]}, {}, b"", "p")
    assert entry.params == {"preference": "_local", "request_cache": "true", "expand_wildcards": "open,hidden"}


def test_a_hybrid_entrys_header_holds_only_keys_its_final_pass_carries():
    assert MsearchEntry({"index": "p", "preference": "x", "search_type": "dfs_query_then_fetch"}, {}, b"",
                        "p").hybrid_header
    assert MsearchEntry({}, {}, b"", "p").hybrid_header
    assert not MsearchEntry({"index": "p", "routing": "u1"}, {}, b"", "p").hybrid_header


def test_the_answer_lists_every_entrys_answer_in_the_requests_order():
    answers = [{"hits": {"hits": []}, "status": 200}, {"error": {"type": "x"}, "status": 400}, {"took": 1}]
    assert json.loads(assemble(answers, 12)) == {"took": 12, "responses": answers}
