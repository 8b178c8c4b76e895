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

__all__ = [
    "DISTRIBUTIONS",
    "ELASTICSEARCH",
    "FLAVORS",
    "OPENSEARCH",
    "Distribution",
    "NodeInfo",
    "clear_state",
    "install",
    "load_state",
    "log_tail",
    "node_status",
    "save_state",
    "start_node",
    "stop_node",
]
