"""Writes a batch to the cluster and sorts what comes back: acknowledged, refused for good, or stop.

Retrying is not done here. The backend has the one retry layer for bulk writes (`streaming_bulk`
re-sends the documents refused with 429, with backoff; see `dsr.backends.cluster`), and what it
returns is final. The writer sorts it:

* a document refused for good (a 400 mapping error, say) comes back as a failure with its reason,
  for the pipeline to put in the rejects file;
* a document still refused for the moment (429 after the backend's retries, a 5xx) says something
  about the cluster, not the document: the write stops with `EngineUnavailable`, as it does when the
  cluster cannot be reached at all. Ingest then stops before its checkpoint moves, and running the
  same command again sends the batch again (both stores upsert by id), so a passing overload or
  outage neither loses a document nor rejects one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsr.backends.base import BulkFailure, BulkResult, SearchBackend
from dsr.errors import EngineUnavailable


def is_retryable(status: int) -> bool:
    """Whether the cluster might take a document it refused with `status` if it were sent again."""
    return status == 429 or status >= 500 or status == 0


@dataclass(frozen=True)
class WriteOutcome:
    acknowledged: list[str] = field(default_factory=list)
    failed: list[BulkFailure] = field(default_factory=list)  # refused for good
    retries: int = 0  # bulk requests the backend re-sent (see `BulkResult.retries`)


class ClusterWriter:
    def __init__(self, backend: SearchBackend, index: str) -> None:
        self.backend = backend
        self.index = index

    def upsert(self, docs: Sequence[Mapping[str, Any]]) -> WriteOutcome:
        by_id = {str(d["id"]): d for d in docs}
        return self._sorted(self.backend.bulk_upsert(self.index, list(by_id.values())), "write")

    def update(self, docs: Sequence[Mapping[str, Any]]) -> WriteOutcome:
        """Add fields to documents the index holds; one it lacks is not created and fails with 404."""
        by_id = {str(d["id"]): d for d in docs}
        return self._sorted(self.backend.bulk_partial_update(self.index, list(by_id.values())), "update")

    def present(self, ids: Sequence[str]) -> WriteOutcome:
        """Write nothing: the ids the index holds count as acknowledged, the others fail with 404."""
        found = self.backend.existing_ids(self.index, list(ids))
        return WriteOutcome([i for i in ids if i in found],
                            [BulkFailure(i, 404, "not in the index") for i in ids if i not in found])

    def delete(self, ids: Sequence[str]) -> WriteOutcome:
        """Delete by id; an id the cluster does not have counts as deleted (the goal is its absence)."""
        result = self.backend.delete(self.index, list(ids))
        missing = [f.id for f in result.failed if f.status == 404]
        result = BulkResult([*result.succeeded, *missing], [f for f in result.failed if f.status != 404],
                            result.retries)
        return self._sorted(result, "delete")

    def _sorted(self, result: BulkResult, what: str) -> WriteOutcome:
        transient = [f for f in result.failed if is_retryable(f.status)]
        if transient:
            statuses = ", ".join(str(s) for s in sorted({f.status for f in transient}))
            raise EngineUnavailable(
                f"{self.backend.url}: {what} to {self.index}: the cluster refused {len(transient)} documents "
                f"for the moment (HTTP {statuses}; e.g. {transient[0].id}: {transient[0].reason}); "
                "nothing was rejected, run the same command again to resume")
        return WriteOutcome(result.succeeded, result.failed, result.retries)
