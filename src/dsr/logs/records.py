"""In-memory search-log records that every log format loads into.

One `Session` is one query issued by one user and what happened to its results: the shape of the
simple jsonl format of DESIGN.md, and what the UBI loader builds from `ubi_queries` + `ubi_events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Session:
    session_id: str
    query: str
    user_id: str | None = None
    ts: float | None = None
    impressions: tuple[str, ...] = ()  # in the order shown (position 1 first)
    clicks: tuple[str, ...] = ()
    add_to_carts: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadProblem:
    """A log line that could not be used, with where it was and why."""

    line: int
    reason: str
    raw: str = ""


@dataclass
class LoadReport:
    """What a loader read, kept, and rejected (with reasons); nothing is dropped silently."""

    lines_read: int = 0
    sessions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count, for expected skips
    problems: list[LoadProblem] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.lines_read} lines read", f"{self.sessions} sessions"]
        parts += [f"{n} skipped ({why})" for why, n in sorted(self.skipped.items())]
        if self.problems:
            parts.append(f"{len(self.problems)} rejected")
        return ", ".join(parts)
