"""The time budget of one `dsr train` run: each stage's share of the time still left.

A budget is split by shares rather than fixed slots so that time a stage does not use (it finished
early, or it was resumed from an earlier run) goes to the stages after it, in proportion to their
shares. The clock is injectable so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

from dsr.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|m|s)?", re.IGNORECASE)
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str | float | None) -> float | None:
    """Seconds from "90", "90s", "30m", "1.5h" or "1h30m" (None and "" for no budget).

    Raises:
        UsageError: the text is not a positive duration.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        spec = text.strip().replace(" ", "")
        parts = list(_PART.finditer(spec))
        if not parts or "".join(p.group(0) for p in parts) != spec or \
                (len(parts) > 1 and any(p.group(2) is None for p in parts)):  # "1h30": 30 what?
            raise UsageError(f"bad duration {text!r}: use seconds (600), or 90s, 30m, 1.5h, 1h30m")
        seconds = sum(float(p.group(1)) * _UNIT_S[(p.group(2) or "s").lower()] for p in parts)
    if not seconds > 0:
        raise UsageError(f"a time budget must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form: 45 s, 12.5 min, 1.4 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class TimeBudget:
    """A run's seconds shared among its stages; `None` seconds means no limit for any stage.

    Args:
        seconds: the whole run's budget.
        shares: stage name -> weight, in the order the stages run.
        clock: a monotonic clock (seconds).
        started: when the run began on `clock` (default: now), so reading the data counts too.
    """

    def __init__(self, seconds: float | None, shares: Mapping[str, float],
                 clock: Callable[[], float] = time.monotonic, *, started: float | None = None) -> None:
        if any(w <= 0 for w in shares.values()):
            raise ValueError("stage shares must be positive")
        self.seconds = seconds
        self.shares = dict(shares)
        self.clock = clock
        self.started = clock() if started is None else started
        self.pending = list(shares)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float | None:
        """Seconds left of the whole budget (negative once over it); None without a budget."""
        return None if self.seconds is None else self.seconds - self.elapsed()

    def allowance(self, stage: str) -> float | None:
        """The seconds `stage` may take now: its share of what is left among the stages still to run."""
        left = self.left()
        if left is None:
            return None
        if stage not in self.pending:
            raise KeyError(f"stage {stage!r} is not waiting to run (waiting: {self.pending})")
        weight = sum(self.shares[s] for s in self.pending)
        return max(0.0, left) * self.shares[stage] / weight

    def done(self, stage: str) -> None:
        """`stage` has finished (or was resumed): later allowances share the time it did not use."""
        if stage in self.pending:
            self.pending.remove(stage)
