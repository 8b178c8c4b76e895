"""dsr.ingest: catalog readers, validation with a rejects file, the two-sided write, resumable checkpoints."""

from dsr.ingest.pipeline import (
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TOO_MANY_REJECTS,
    IngestOptions,
    IngestReport,
    ingest,
    read_delete_file,
)
from dsr.ingest.verify import DriftReport, verify

__all__ = [
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_TOO_MANY_REJECTS",
    "DriftReport",
    "IngestOptions",
    "IngestReport",
    "ingest",
    "read_delete_file",
    "verify",
]
