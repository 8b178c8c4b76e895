"""The engines a test session or a benchmark runs against: existing clusters, or local nodes it starts.

`DSR_TEST_ES_URL` / `DSR_TEST_OS_URL` name running clusters to reuse; an engine without one gets a
single-node server from `start_node`, and the caller stops what was started (`EngineUrls.stop`, or a
`with` block), never a cluster it was given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from dsr.engines.distribution import ELASTICSEARCH, OPENSEARCH
from dsr.engines.node import NodeInfo, start_node, stop_node

ENGINE_URL_ENV: Mapping[str, str] = {ELASTICSEARCH: "DSR_TEST_ES_URL", OPENSEARCH: "DSR_TEST_OS_URL"}
"""Engine flavour -> the environment variable naming an existing cluster of that flavour."""


@dataclass(frozen=True)
class EngineUrls:
    """The URL of each engine asked for, and the nodes started for them (only those are ever stopped)."""

    urls: Mapping[str, str]
    started: tuple[NodeInfo, ...] = ()

    def stop(self) -> None:
        """Stop the started nodes (and remove their data); the clusters named by the environment are left alone."""
        for info in self.started:
            stop_node(info)

    def __enter__(self) -> EngineUrls:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def engine_urls(flavors: Iterable[str], *, log: Callable[[str], None] | None = None) -> EngineUrls:
    """A URL for each flavour: its `ENGINE_URL_ENV` variable when set, else a local node started here.

    The missing nodes start in parallel (each takes tens of seconds to come up). If any fails to
    start, the ones that did are stopped before the error is raised, so nothing is left running.
    """
    names = list(dict.fromkeys(flavors))
    given = {f: url for f in names if (url := os.environ.get(ENGINE_URL_ENV.get(f, "")))}
    missing = [f for f in names if f not in given]
    if not missing:
        return EngineUrls(given)
    if log is not None:
        log(f"starting local {' and '.join(missing)} node{'s' if len(missing) > 1 else ''}")
    with ThreadPoolExecutor(max_workers=len(missing)) as pool:
        futures = [pool.submit(start_node, f) for f in missing]
    started = tuple(fut.result() for fut in futures if fut.exception() is None)
    errors = [e for fut in futures if (e := fut.exception()) is not None]
    if errors:
        EngineUrls({}, started).stop()
        raise errors[0]
    urls = {**given, **{info.flavor: info.url for info in started}}
    return EngineUrls({f: urls[f] for f in names}, started)
