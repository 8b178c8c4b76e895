"""The workbench page in a real headless browser (Debian's chromium, driven by Playwright) against a real
`dsr serve` on Elasticsearch.

The catalog is ingested with `dsr ingest --model hashing:64`; `dsr serve` runs as its own process with
an XGBoost ranker trained in a second and a judgments file. The page is used as a person uses it: a
query typed, three columns read, hits graded with the keys, NDCG seen to move, a hit explained, the
judgments exported and read back by `dsr eval`, whose NDCG is the page's. The page's screenshot is
taken on every run; with `DSR_UPDATE_SCREENSHOT=1` it replaces docs/workbench.png (the README's).
Hostile catalog strings (HTML, `<script>`, `<img onerror>`, a `javascript:` picture) must show as text and run nothing.
"""

from __future__ import annotations

import json
import os
import shutil
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

from ..support.workbench_shop import (
    HOSTILE_BRAND,
    HOSTILE_TITLE,
    judgments,
    shop_catalog,
    train_ranker,
    write_catalog,
    write_judgments,
)

REPO = Path(__file__).resolve().parents[2]
README_SCREENSHOT = REPO / "docs" / "workbench.png"
MODEL = "hashing:64"


def chromium() -> str:
    """Debian's chromium (`make chromium` installs it); Playwright's own browser download is not used."""
    found = os.environ.get("DSR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: run `make chromium` (apt-get install -y chromium)")
    return found


@dataclass
class Shop:
    url: str
    es: SearchBackend
    index: str
    data_dir: Path
    catalog: Path


@pytest.fixture(scope="module")
def shop(es_backend: SearchBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("workbench")
    data_dir = root / "data"
    index = f"dsr-e2e-page-{uuid.uuid4().hex[:8]}"
    items = shop_catalog()
    catalog = write_catalog(root / "catalog.jsonl", items)
    team = write_judgments(root / "team.tsv", judgments(["red sneakers", "blue boots"], items, per_query=3))
    ranker = train_ranker(root / "ranker", items)
    ingested = CliRunner().invoke(cli, ["--engine", es_backend.url, "--data-dir", str(data_dir), "ingest",
                                        str(catalog), "--index", index, "--model", MODEL, "--quiet"])
    assert ingested.exit_code == 0, ingested.output
    port = free_port()
    dsr = Path(sys.executable).with_name("dsr")
    proc = subprocess.Popen([str(dsr), "--engine", es_backend.url, "--data-dir", str(data_dir), "serve", "--index",
                             index, "--model", MODEL, "--ranker", str(ranker), "--judgments", str(team),
                             "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url)
        yield Shop(url, es_backend, index, data_dir, catalog)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        es_backend.delete_index(index)


def _wait_until_up(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/_dsr/api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "dsr serve exited"
        assert time.monotonic() < deadline, "dsr serve did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, shop: Shop) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    opened = context.new_page()
    opened.csp_violations = []
    opened.on("console", lambda m: opened.csp_violations.append(m.text)
              if "Content Security Policy" in m.text else None)
    opened.goto(f"{shop.url}/_dsr/")
    opened.wait_for_selector("body[data-ready=true]")
    try:
        yield opened
    finally:
        context.close()


def search(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")
    page.wait_for_function("t => document.querySelectorAll('.column .hit[data-id]').length >= 3 && "
                           "document.querySelector('#message').textContent === ''", arg=text)


def ndcg(page: Any, column: int) -> str:
    return page.inner_text(f'.column[data-column="{column}"] .metric.ndcg b')


def test_a_query_three_columns_grades_ndcg_explain_and_the_export_read_back_by_dsr_eval(page, shop, tmp_path):
    assert page.inner_text("#served").startswith(f"index {shop.index} · elasticsearch")
    search(page, "red sneakers")
    columns = page.locator(".column")
    assert columns.count() == 3
    assert [columns.nth(n).locator(".title").inner_text() for n in range(3)] == ["bm25", "hybrid-rrf",
                                                                                   "hybrid+rerank"]
    for n in range(3):
        assert columns.nth(n).locator(".hit").count() == 10
    # every stage is shown where the hit went through it, and marked where it did not
    bm25_top = columns.nth(0).locator(".hit").first
    assert bm25_top.locator(".stage.term").inner_text().startswith("term #1 · ")
    assert "none" in (bm25_top.locator(".stage.vector").get_attribute("class") or "")
    reranked_top = columns.nth(2).locator(".hit").first
    assert reranked_top.locator(".stage.rerank").inner_text().startswith("ranker #1 · ")
    assert reranked_top.locator(".stage.fused").inner_text().startswith("fused #")
    assert page.locator(".move").count() > 0

    # the judgments file graded this query: NDCG is shown, and moves when a hit is graded with the keys
    before = ndcg(page, 0)
    assert before != "–"
    bm25_top.locator(".hit-title").click()
    assert bm25_top.locator(".grade-btn.on").inner_text() == "3"  # the file's grade of the best match
    page.keyboard.press("0")
    page.wait_for_function("b => document.querySelector('.column[data-column=\"0\"] .metric.ndcg b').textContent "
                           "!== b", arg=before)
    assert float(ndcg(page, 0)) < float(before)
    assert bm25_top.locator(".grade-label").inner_text() == "not relevant"
    page.keyboard.press("3")  # graded back up: NDCG as the file had it
    page.wait_for_function("b => document.querySelector('.column[data-column=\"0\"] .metric.ndcg b').textContent "
                           "=== b", arg=before)
    # to the re-ranked column, a hit nobody graded yet: graded 2 there, the unjudged share falls
    unjudged = page.inner_text('.column[data-column="2"] .metric.unjudged b')
    page.keyboard.press("l")
    page.keyboard.press("l")
    focused = page.locator(".hit.focused")
    assert focused.get_attribute("data-column") == "2"
    while focused.locator(".grade-label").inner_text() != "ungraded":
        page.keyboard.press("j")
        focused = page.locator(".hit.focused")
    graded_id = focused.get_attribute("data-id")
    page.keyboard.press("2")
    page.wait_for_function("u => document.querySelector('.column[data-column=\"2\"] .metric.unjudged b')"
                           ".textContent !== u", arg=unjudged)
    assert focused.locator(".grade-label").inner_text() == "relevant"

    # explained: the cluster's own explanation of the term score, the DSR similarity, the ranker's inputs
    page.keyboard.press("e")
    panel = page.locator(".hit.focused .explain")
    panel.locator("table.ranker-inputs").wait_for()
    assert "reproduced" in panel.inner_text() and "NOT reproduced" not in panel.inner_text()
    assert panel.locator("table.ranker-inputs tr").count() > 5
    if focused.locator(".stage.term").get_attribute("class") == "stage term":
        assert "weight(" in panel.locator(".term-tree").inner_text()

    # the judged queries, worst first, and a case scored per column
    page.click("#score-judged")
    page.locator("#judged table").last.wait_for()
    assert page.locator("#judged td.query").count() == 2
    page.fill("#case-name", "colours")
    page.fill("#case-queries", "red sneakers\nblue boots\ngreen sandals")
    page.click("#case-save")
    page.wait_for_function("() => [...document.querySelectorAll('#case-select option')].some(o => o.value === "
                           "'colours')")
    page.click("#case-run")
    page.locator("#case-result table.means").wait_for()
    assert page.locator("#case-result table.means tr").count() == 4  # a heading and three columns
    page.evaluate("window.scrollTo(0, 0)")
    screenshot = README_SCREENSHOT if os.environ.get("DSR_UPDATE_SCREENSHOT") == "1" else tmp_path / "workbench.png"
    screenshot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000

    # exported in the page, read back by dsr eval: its BM25 NDCG is the page's for the same judgments
    with page.expect_download() as download:
        page.click("#export")
    exported = tmp_path / f"workbench-{uuid.uuid4().hex[:8]}.tsv"
    download.value.save_as(str(exported))
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query\titem_id\tgrade"
    assert f"red sneakers\t{graded_id}\t2" in lines
    page_scores = httpx.post(f"{shop.url}/_dsr/api/queries", json={"columns": ["bm25"]}, timeout=60).json()
    out = tmp_path / "eval"
    evaluated = subprocess.run(
        [str(Path(sys.executable).with_name("dsr")), "--engine", shop.es.url, "--data-dir", str(tmp_path / "eval-data"),
         "eval", "--catalog", str(shop.catalog), "--judgments", str(exported), "--pipelines", "bm25", "--split", "all",
         "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300, env={**os.environ})
    try:
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        report = json.loads((out / "report.json").read_text())
        eval_ndcg = report[exported.stem]["all"]["bm25"]["ndcg10"]
        assert eval_ndcg == pytest.approx(page_scores["columns"][0]["means"]["ndcg10"], abs=1e-6)
    finally:
        for name in shop.es.client.indices.get(index=f"dsr-eval-{exported.stem}-*"):  # dsr eval's own index
            shop.es.delete_index(name)
    assert page.csp_violations == []


def test_hostile_catalog_strings_show_as_text_and_run_nothing(page, shop):
    search(page, "trail runner")
    hostile = page.locator('.hit[data-id="x-html"]').first
    assert hostile.locator(".hit-title").inner_text() == HOSTILE_TITLE
    assert HOSTILE_BRAND in hostile.locator(".sub").inner_text()
    picture = hostile.locator("img.thumb")
    assert picture.get_attribute("src") == "https://images.invalid/trail-runner.png"
    assert page.locator('.hit[data-id="x-js"]').first.locator("img").count() == 0  # a javascript: picture: none
    hostile.locator(".hit-title").click()
    page.keyboard.press("e")
    page.locator(".hit.focused .explain h3").first.wait_for()
    page.wait_for_function("() => !document.querySelector('.hit.focused .explain').textContent.includes('…')")
    assert "trail" in page.inner_text(".hit.focused .explain")
    page.locator(".hit.focused .grade-btn[data-grade='1']").click()
    page.wait_for_function("() => document.querySelector('.hit.focused .grade-label').textContent === 'somewhat'")

    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#columns script").count() == 0
    smuggled = "() => document.querySelectorAll('[onerror], [onmouseover], #columns img:not(.thumb)').length"
    assert page.evaluate(smuggled) == 0
    # and the policy holds for anything that might slip through: no inline script, no eval
    assert page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
                         " document.body.appendChild(s); return window.__inline; }") is None
    page.evaluate("() => { const b = document.createElement('button'); b.id = 'inline-handler'; b.textContent = 'x';"
                  " b.setAttribute('onclick', 'window.__handler = 1'); document.body.appendChild(b); }")
    page.click("#inline-handler")
    assert page.evaluate("() => window.__handler") is None
    assert len([v for v in page.csp_violations if "Content Security Policy" in v]) >= 2  # both attempts, refused
    headers = httpx.get(f"{shop.url}/_dsr/", timeout=30).headers
    assert headers["x-content-type-options"] == "nosniff"
