"""Exception types shared across dsr.

Every failure a user can cause or fix (bad input, an unreachable cluster, a corrupt model) is a
`DsrError`: the CLI prints its message on one line and exits with its `exit_code`, and shows the
traceback only under `--debug`. Engine client exceptions never escape the backend layer; they are
translated into these types there.
"""

from __future__ import annotations


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
    """A search engine answered with an error we cannot recover from."""

    exit_code = 2


class EngineUnavailable(EngineError):
    """The cluster cannot be reached: connection refused, DNS, timeout, TLS failure."""


class EngineAuthError(EngineError):
    """The cluster refused our credentials (401/403)."""


class IndexNotFound(EngineError):
    """The named index does not exist."""


class EngineStartError(DsrError):
    """A local engine distribution could not be fetched, unpacked or started."""

    exit_code = 2


class ModelFormatError(DsrError):
    """A model directory is missing, of an unknown format version, or inconsistent."""

    exit_code = 2


class VectorIndexError(DsrError):
    """The vector sidecar is missing, corrupt or unreachable."""

    exit_code = 2
