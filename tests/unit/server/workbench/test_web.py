"""The page's files ship inside the package, carry no inline script, build the DOM from text only, and every
answer carries the restrictive headers; the API takes JSON from its own origin only."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from importlib import resources

import pytest
from starlette.requests import Request

from dsr.errors import UsageError
from dsr.server.workbench.web import (
    CSP,
    STATIC_FILES,
    Refused,
    check_origin,
    file_response,
    json_response,
    read_json,
    static_file,
)


def test_the_page_files_are_package_data_of_the_installed_package():
    folder = resources.files("dsr.server.workbench").joinpath("static")
    for name in STATIC_FILES:
        assert folder.joinpath(name).is_file(), name
        assert static_file(name)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text += data.strip()


def test_the_page_loads_its_one_script_file_and_holds_no_inline_script_or_style():
    parser = Tags()
    parser.feed(static_file("index.html").decode("utf-8"))
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"src": "/_dsr/static/workbench.js", "defer": None}]
    assert parser.script_text == ""
    for tag, attrs in parser.tags:
        assert tag != "style"
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("/_dsr/"), (tag, attrs)  # nothing from another origin


def test_the_script_builds_the_dom_from_text_and_never_evaluates_strings():
    js = static_file("workbench.js").decode("utf-8")
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "setTimeout(\"", "javascript:", "http://", "https://"):
        assert forbidden not in js, forbidden
    # catalog strings reach the page through text nodes; a picture only from an http(s) URL
    assert "createTextNode" in js and "textContent" in js
    assert re.search(r"/\^https\?:\\/\\//i\.test\(hit\.image\)", js)


def test_every_answer_carries_the_restrictive_headers():
    for response in (file_response("index.html"), file_response("workbench.js"), json_response({"a": 1}),
                     file_response("missing.js")):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert file_response("missing.js").status_code == 404
    assert file_response("workbench.js").headers["content-type"].startswith("text/javascript")
    policy = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert "unsafe" not in CSP  # neither unsafe-inline nor unsafe-eval
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"


def request(headers: dict[str, str], body: bytes = b"") -> Request:
    sent = [False]

    async def receive():
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/_dsr/api/search", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    return Request(scope, receive)


def test_a_request_from_a_page_of_another_origin_is_refused():
    check_origin(request({"host": "127.0.0.1:9400"}))
    check_origin(request({"host": "127.0.0.1:9400", "origin": "http://127.0.0.1:9400"}))
    with pytest.raises(Refused) as refused:
        check_origin(request({"host": "127.0.0.1:9400", "origin": "https://shop.example"}))
    assert refused.value.status == 403


def test_the_api_reads_json_objects_sent_as_json_only():
    ok = asyncio.run(read_json(request({"content-type": "application/json; charset=utf-8"}, b'{"text": "q"}')))
    assert ok == {"text": "q"}
    for headers, body, status in (({"content-type": "text/plain"}, b'{"text": "q"}', 415),
                                  ({}, b'{"text": "q"}', 415),
                                  ({"content-type": "application/json"}, b"[1, 2]", 400),
                                  ({"content-type": "application/json"}, b"{bad", 400)):
        with pytest.raises(Refused) as refused:
            asyncio.run(read_json(request(headers, body)))
        assert refused.value.status == status
    with pytest.raises(UsageError, match="NaN"):
        asyncio.run(read_json(request({"content-type": "application/json"}, b'{"grade": NaN}')))
