"""Which configured entry a search's target belongs to, and the `ServedIndex` of each name served.

`dsr serve --config` serves several indexes, aliases and patterns, each with its own models and
defaults (`dsr.server.serve_config`); `--index` serves one. Whether a target is configured is
answered without asking the cluster (a name, a pattern, or the concrete index a served alias stood
for at its last search), so a plain search on an index dsr does not serve costs nothing more than
before. The searcher of a name is built on its first search, each model loaded once per process, and
follows its alias as `ServedIndex` does; a pattern's targets each get their own.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable

from dsr.server.serve_config import ServedEntry
from dsr.server.targets import ServedIndex, TargetRefused

log = logging.getLogger(__name__)

MAX_PATTERN_TARGETS = 64  # names served under patterns at once; one more is refused

MakeServed = Callable[[ServedEntry, str], ServedIndex]


class ConfiguredIndexes:
    """The configured entries, and the `ServedIndex` of each name searched so far.

    Args:
        entries: the configured entries, the first one being the one `main` serves.
        main: the `ServedIndex` of the first entry, made at start.
        make: the `ServedIndex` of another entry's name, made on its first search.
    """

    def __init__(self, entries: tuple[ServedEntry, ...], main: ServedIndex, make: MakeServed) -> None:
        self.entries = entries
        self.main_entry = entries[0]
        self._served: dict[str, tuple[ServedEntry, ServedIndex]] = {main.name: (entries[0], main)}
        self._make = make
        self._lock = threading.Lock()

    @property
    def any_hybrid(self) -> bool:
        """Whether any entry answers plain searches hybrid (so `_msearch` bodies are worth reading)."""
        return any(e.hybrid for e in self.entries)

    @property
    def main(self) -> ServedIndex:
        return self._served[self.main_entry.name][1]

    def entry_for(self, target: str) -> ServedEntry | None:
        """The entry that serves `target`: by name, by pattern, or by the index a served alias stands for."""
        for entry in self.entries:
            if entry.name == target:
                return entry
        if "," not in target:
            for entry in self.entries:
                if entry.is_pattern and fnmatch.fnmatchcase(target, entry.name):
                    return entry
        for entry, served in list(self._served.values()):
            if served.known_index() == target:
                return entry
        return None

    def served_for(self, target: str) -> tuple[ServedEntry, ServedIndex] | None:
        """The entry and `ServedIndex` for `target`, built on first use; None when no entry serves it."""
        entry = self.entry_for(target)
        if entry is None:
            return None
        name = target if entry.is_pattern and target != entry.name else entry.name
        for served_entry, served in list(self._served.values()):
            if served_entry is entry and served.known_index() == target:
                return entry, served
        with self._lock:
            known = self._served.get(name)
            if known is not None:
                return known
            if entry.is_pattern and sum(1 for e, _ in self._served.values() if e.is_pattern) >= MAX_PATTERN_TARGETS:
                raise TargetRefused(f"more than {MAX_PATTERN_TARGETS} indexes are served under patterns already; "
                                    f"[{target}] is not")
            served = self._make(entry, name)
            self._served[name] = (entry, served)
            return entry, served

    def for_ext_search(self, target: str) -> ServedIndex:
        """Where an `ext.dsr` search on `target` runs: its entry's, else (one entry) the main one, which
        follows aliases and patterns that reach its index or refuses them with the reason."""
        found = self.served_for(target)
        if found is not None:
            return found[1]
        if len(self.entries) == 1:
            return self.main
        names = ", ".join(e.name for e in self.entries)
        raise TargetRefused(f"[{target}] is not an index dsr serves hybrid (served: {names})")

    def close(self) -> None:
        with self._lock:
            served, self._served = list(self._served.values()), {}
        for _, s in served:
            s.close()
