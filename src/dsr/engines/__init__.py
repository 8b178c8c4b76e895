"""Local single-node engines for development and tests: fetch, install, start, stop."""

from dsr.engines.distribution import DISTRIBUTIONS, ELASTICSEARCH, OPENSEARCH, Distribution, install
from dsr.engines.node import (
    FLAVORS,
    NodeInfo,
    clear_state,
    load_state,
    log_tail,
    node_status,
    save_state,
    start_node,
    stop_node,
)
from dsr.engines.ports import free_port
from dsr.engines.urls import ENGINE_URL_ENV, EngineUrls, engine_urls

__all__ = [
    "DISTRIBUTIONS",
    "ELASTICSEARCH",
    "ENGINE_URL_ENV",
    "FLAVORS",
    "OPENSEARCH",
    "Distribution",
    "EngineUrls",
    "NodeInfo",
    "clear_state",
    "engine_urls",
    "free_port",
    "install",
    "load_state",
    "log_tail",
    "node_status",
    "save_state",
    "start_node",
    "stop_node",
]
