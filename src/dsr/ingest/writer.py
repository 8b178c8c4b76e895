"""Writes to the cluster with retries: backoff on 429 / 5xx / connection failures, permanent failures kept.

Like elasticsearch-py's `streaming_bulk`, only the documents that failed with a retryable status are
sent again, with exponential backoff; a document refused for good (a 400 mapping error, say) comes
back as a failure with its reason so the pipeline can put it in the rejects file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsr.backends.base import BulkFailure, BulkResult, SearchBackend
from dsr.errors import EngineUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.initial_backoff_s * 2**attempt)


def is_retryable(status: int) -> bool:
    return status == 429 or status >= 500 or status == 0


@dataclass
class WriteOutcome:
    acknowledged: list[str] = field(default_factory=list)
    failed: list[BulkFailure] = field(default_factory=list)
    retries: int = 0


class ClusterWriter:
    def __init__(self, backend: SearchBackend, index: str, policy: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.backend = backend
        self.index = index
        self.policy = policy
        self._sleep = sleep

    def upsert(self, docs: Sequence[Mapping[str, Any]]) -> WriteOutcome:
        by_id = {str(d["id"]): d for d in docs}
        return self._with_retries(list(by_id), lambda ids: self.backend.bulk_upsert(
            self.index, [by_id[i] for i in ids]))

    def delete(self, ids: Sequence[str]) -> WriteOutcome:
        """Delete by id; an id the cluster does not have counts as deleted (the goal is its absence)."""
        outcome = self._with_retries(list(ids), lambda batch: self.backend.delete(self.index, batch))
        missing = [f for f in outcome.failed if f.status == 404]
        outcome.failed = [f for f in outcome.failed if f.status != 404]
        outcome.acknowledged += [f.id for f in missing]
        return outcome

    def _with_retries(self, ids: list[str], call: Callable[[list[str]], BulkResult]) -> WriteOutcome:
        outcome = WriteOutcome()
        pending = ids
        attempt = 0
        while pending:
            try:
                result = call(pending)
            except EngineUnavailable as e:
                if attempt >= self.policy.max_retries:
                    raise
                log.warning("cluster unavailable (%s); retrying in %.1fs", e, self.policy.delay(attempt))
                self._sleep(self.policy.delay(attempt))
                attempt += 1
                outcome.retries += 1
                continue
            outcome.acknowledged += result.succeeded
            retry = [f for f in result.failed if is_retryable(f.status)]
            outcome.failed += [f for f in result.failed if not is_retryable(f.status)]
            if retry and attempt < self.policy.max_retries:
                log.warning("%d documents refused with %s; retrying in %.1fs", len(retry),
                            sorted({f.status for f in retry}), self.policy.delay(attempt))
                self._sleep(self.policy.delay(attempt))
                attempt += 1
                outcome.retries += 1
                pending = [f.id for f in retry]
                continue
            outcome.failed += [BulkFailure(f.id, f.status, f"{f.reason} (after {attempt} retries)")
                               for f in retry]
            pending = []
        return outcome
