"""dsr.logs: search-log formats (OpenSearch UBI, simple jsonl sessions), training triples, and the
synthetic catalog + click simulator used by tests and the demo."""

from dsr.logs.jsonl import load_sessions_jsonl, write_sessions_jsonl
from dsr.logs.load import load_logs
from dsr.logs.records import LoadProblem, LoadReport, Session
from dsr.logs.triples import Triple, TripleConfig, build_triples
from dsr.logs.ubi import load_ubi

__all__ = [
    "LoadProblem",
    "LoadReport",
    "Session",
    "Triple",
    "TripleConfig",
    "build_triples",
    "load_logs",
    "load_sessions_jsonl",
    "load_ubi",
    "write_sessions_jsonl",
]
