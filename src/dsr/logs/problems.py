"""Bookkeeping shared by the log loaders: every rejected line is recorded with its number and reason,
and a run stops only when rejections exceed the caller's `max_errors` bound."""

from __future__ import annotations

from dsr.errors import InputError
from dsr.logs.records import LoadProblem, LoadReport

RAW_PREVIEW = 200


def reject(report: LoadReport, line: int, reason: str, raw: str = "", *, max_errors: int | None,
           source: str) -> None:
    report.problems.append(LoadProblem(line=line, reason=reason, raw=raw[:RAW_PREVIEW]))
    if max_errors is not None and len(report.problems) > max_errors:
        first = "; ".join(f"line {p.line}: {p.reason}" for p in report.problems[:3])
        raise InputError(
            f"{source}: more than {max_errors} malformed lines (first: {first}); "
            f"fix the file or raise --max-errors"
        )


def skip(report: LoadReport, reason: str, n: int = 1) -> None:
    """An expected, harmless skip (another application's events, an unused action): counted by reason."""
    report.skipped[reason] = report.skipped.get(reason, 0) + n
