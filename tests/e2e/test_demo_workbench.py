"""`dsr demo` ends with the workbench of its shop: the URL and the command that serves it, or, with `--serve`,
the workbench itself (with the simulator's grades as judgments) until stopped."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dsr.engines import free_port
from dsr.eval.judgments import read_judgments
from dsr.jobs.demo import INDEX, run_demo, serve_command, serve_settings
from dsr.server import create_app


def test_the_demo_prints_the_workbench_url_and_a_command_that_serves_it(tmp_path, serve_thread):
    lines: list[str] = []
    out = tmp_path / "demo"
    run_demo(out, n_items=300, n_sessions=800, epochs=1, echo=lines.append)
    assert lines[-3].endswith("http://127.0.0.1:9400/_dsr/")
    command = shlex.split(lines[-2].split("served by: ", 1)[1])
    assert command == shlex.split(serve_command(out))
    assert command[:5] == ["dsr", "--engine", "embedded", "--data-dir", str(out)]
    assert command[command.index("--judgments") + 1] == str(out / "judgments.tsv")
    rows, rejected = read_judgments(out / "judgments.tsv")
    assert rows and not rejected and {r.grade for r in rows} <= {1.0, 2.0, 3.0}

    with serve_thread(create_app(serve_settings(out))) as url:  # what the command serves
        info = httpx.get(f"{url}/_dsr/api/info", timeout=30).json()
        assert info["index"] == INDEX and info["ranker"] == "SiameseRanker" and info["vector_source"] == "sidecar"
        assert info["judgments"]["loaded"] == len(rows)
        query = rows[0].query
        out_ = httpx.post(f"{url}/_dsr/api/search", json={"text": query, "columns": ["bm25", "hybrid+rerank"]},
                          timeout=60).json()
        assert all(c["hits"] and c["metrics"]["ndcg10"] is not None for c in out_["columns"])


def test_demo_serve_runs_the_demo_then_serves_its_workbench_until_stopped(tmp_path):
    port = free_port()
    dsr = Path(sys.executable).with_name("dsr")
    proc = subprocess.Popen([str(dsr), "demo", "--items", "300", "--sessions", "800", "--out", str(tmp_path / "d"),
                             "--serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/_dsr/", timeout=2)
                if page.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "dsr demo exited"
            assert time.monotonic() < deadline, "dsr demo --serve did not serve"
            time.sleep(0.5)
        assert "workbench.js" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output[-2000:]
    assert f"serving the demo shop: http://127.0.0.1:{port}/_dsr/" in output
