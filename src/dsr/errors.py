"""Exception types shared across dsr.

Every failure a user can cause or fix (bad input, an unreachable cluster, a corrupt model) is a
`DsrError`: the CLI prints its message on one line and exits with its `exit_code`, and shows the
traceback only under `--debug`. Engine client exceptions never escape the backend layer; they are
translated into these types there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DsrError(Exception):
    """A failure with a message meant for the user."""

    exit_code: int = 1


class UsageError(DsrError):
    """The user asked for something invalid (bad flag value, missing file)."""

    exit_code = 2


class InputError(DsrError):
    """Input data (catalog, logs, judgments) is malformed beyond what can be skipped and reported."""

    exit_code = 3


class EngineError(DsrError):
    """A search engine answered with an error we cannot recover from.

    When the cluster answered, `status` is its HTTP status and `error` the `error` object of its
    answer (`type`, `reason`, `root_cause`, ...), so that a server in front of the cluster can answer
    as the cluster itself would; both are None when no answer came. `retry_after` is the number of
    seconds after which a retry may succeed, when the cluster (or dsr) knows one.
    """

    exit_code = 2

    def __init__(self, message: str, *, status: int | None = None, error: Mapping[str, Any] | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] | None = dict(error) if error is not None else None
        self.retry_after = retry_after


class EngineUnavailable(EngineError):
    """The cluster cannot be reached: connection refused, DNS, timeout, TLS failure."""


class EngineTimeout(EngineUnavailable):
    """The cluster did not answer in time."""


class EngineAuthError(EngineError):
    """The cluster refused our credentials (401/403)."""


class IndexNotFound(EngineError):
    """The named index does not exist."""


class EngineRequestError(EngineError):
    """The cluster refused the request itself (a 4xx: bad query DSL, too many clauses, an unknown field).

    The request is the caller's to fix; `status` and `error` say what the cluster objected to.
    """


class EngineOverloaded(EngineError):
    """The cluster (or dsr in front of it) is too busy for the request now: a 429 (a tripped circuit
    breaker, a full queue). Retrying later, after `retry_after` seconds when set, may succeed."""


class EngineStartError(DsrError):
    """A local engine distribution could not be fetched, unpacked or started."""

    exit_code = 2


class ModelFormatError(DsrError):
    """A model directory is missing, of an unknown format version, or inconsistent."""

    exit_code = 2


class VectorIndexError(DsrError):
    """The vector sidecar is missing, corrupt or unreachable."""

    exit_code = 2
