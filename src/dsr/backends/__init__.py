"""Search backends: one protocol, three implementations (Elasticsearch, OpenSearch, embedded)."""

from dsr.backends.base import (
    EMBEDDING_FIELD,
    BulkFailure,
    BulkResult,
    Caller,
    Filters,
    Hit,
    IndexSpec,
    SearchBackend,
)
from dsr.backends.factory import connect, detect_flavor

__all__ = [
    "EMBEDDING_FIELD",
    "BulkFailure",
    "BulkResult",
    "Caller",
    "Filters",
    "Hit",
    "IndexSpec",
    "SearchBackend",
    "connect",
    "detect_flavor",
]
