"""What an index expression (a name, an alias, a comma list, a pattern) stands for on a cluster.

Both engines answer `GET /<target>/_alias` with the concrete indexes a search on `<target>` reaches
(aliases followed, patterns expanded, `-name` exclusions applied) and, for each, every alias it has
with that alias's filter and routing. `resolved_target` reads that answer once for both dialects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

FILTERING_KEYS = ("filter", "search_routing", "routing")
"""What an alias may carry that narrows the documents a search through it sees."""


@dataclass(frozen=True)
class ResolvedTarget:
    """The concrete indexes behind a target, and the aliases it names that narrow what a search sees.

    `indexes` is empty when nothing matches. `filtered_aliases` are the aliases with a filter or a
    search routing that the target names, exactly or by a pattern.
    """

    target: str
    indexes: tuple[str, ...]
    filtered_aliases: tuple[str, ...] = ()


def resolved_target(target: str, answer: Mapping[str, Any]) -> ResolvedTarget:
    """The `ResolvedTarget` of `target` from the cluster's `GET /<target>/_alias` answer."""
    parts = [p for p in (s.strip() for s in target.split(",")) if p]
    named = [p for p in parts if not p.startswith("-")]
    excluded = [p[1:] for p in parts if p.startswith("-")]
    filtered: set[str] = set()
    for entry in answer.values():
        aliases = entry.get("aliases") if isinstance(entry, Mapping) else None
        for alias, spec in (aliases or {}).items():
            narrows = isinstance(spec, Mapping) and any(spec.get(key) for key in FILTERING_KEYS)
            if (narrows and any(fnmatchcase(alias, p) for p in named)
                    and not any(fnmatchcase(alias, p) for p in excluded)):
                filtered.add(alias)
    return ResolvedTarget(target, tuple(sorted(answer)), tuple(sorted(filtered)))
