"""End-to-end fixtures: a `dsr serve` app run in-process (uvicorn on a free loopback port, in a thread)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import uvicorn

from dsr.engines import free_port


class ServerThread:
    """`with ServerThread(app) as url:` serves `app` until the block ends."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, access_log=False,
                                                    log_level="warning", lifespan="on",
                                                    server_header=False, date_header=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("dsr serve did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def serve_thread() -> type[ServerThread]:
    """The `ServerThread` class: `with serve_thread(create_app(...)) as url: ...`."""
    return ServerThread
