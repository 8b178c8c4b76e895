"""Log timestamps arrive as ISO-8601 strings or epoch seconds/milliseconds; sessions keep epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime

_MS_THRESHOLD = 1e11  # larger numbers are epoch milliseconds (1e11 s is the year 5138)


def parse_ts(value: object) -> float | None:
    """Epoch seconds, or None when missing; raises ValueError for a value that is not a time."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        v = float(value)
        return v / 1000.0 if abs(v) > _MS_THRESHOLD else v
    if isinstance(value, str):
        s = value.strip()
        try:
            return parse_ts(float(s))
        except ValueError:
            pass
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise ValueError(f"not a timestamp: {value!r}")
