"""`dsr sidecar serve` in its own process, as a deployment runs it, for tests that query it over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from dsr.engines import free_port


def dsr_argv(*args: str) -> list[str]:
    """The command line of `dsr ARGS...` with this interpreter, whether or not the entry point is installed."""
    return [sys.executable, "-c", "from dsr.cli import main; main()", *args]


@contextmanager
def served_sidecar(directory: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """`with served_sidecar(dir) as url:` serves the sidecar saved in `dir` on a free loopback port until
    the block ends; the url is yielded once `/health` answers."""
    port = free_port()
    # output goes to a file, not a pipe: a talkative server never blocks on a full pipe
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(dsr_argv("sidecar", "serve", "--dir", str(directory), "--port", str(port),
                                         "--device", "cpu"),
                                env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=output, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(url):
                if proc.poll() is not None:
                    output.seek(0)
                    raise RuntimeError(f"dsr sidecar serve exited with {proc.returncode}: {output.read().decode()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dsr sidecar serve did not answer /health within {timeout:.0f}s")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False
