"""Parts the tests of several folders share: a synthetic shoe catalog with transparent rankers,
`dsr sidecar serve` run as its own process, ingest runs that die mid-way, a relaying HTTP proxy in
front of a cluster, and the check that a shop's sidecar holds exactly its index.

Tests import them relatively (`from ..support.shoes import catalog` in tests/e2e). Under
`--import-mode=importlib` pytest names every test module after its path from the rootdir
(`tests.e2e.test_serve_hybrid`), with `tests` a namespace package, so `tests.support` resolves
without tests/ on `sys.path`.
"""
