"""The index a hybrid search runs on: `--index` followed through aliases, and its searcher.

Shops search through an alias and reindex by building a new index and moving the alias to it. So
`--index` may name an index or an alias, and a hybrid search whose path names the served index, or
an alias, comma list or pattern that the cluster resolves to exactly the index the served name
stands for now, runs on that concrete index, with that index's own sidecar. What a name stands for
is asked of the cluster (`resolve_index`, with dsr's own credentials) and kept for a few seconds,
so most searches cost no extra round trip, and a moved alias is followed within that time.

A target the searcher cannot answer as the cluster would is refused with the reason: one that
reaches several indexes, an index dsr does not serve, nothing at all, or an alias with a filter or
routing (the sidecar's neighbours would not pass through it). Caller rights are not loosened: the
searches themselves still run with the caller's credentials, on the concrete index.

While the served alias reaches several indexes at once (a swap made in two steps) or cannot be
resolved, the index served before stays served; before any is known the name is searched as given.
The searcher of a new index is built once when the alias first points at it, and the previous one
is released when the searches running on it end.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from dsr.backends.aliases import ResolvedTarget
from dsr.errors import EngineError
from dsr.search.hybrid import HybridResult, HybridSearcher
from dsr.search.request import SearchRequest
from dsr.server.components import IndexSearcher, searcher_for_index, vector_mode
from dsr.server.settings import ServeSettings

log = logging.getLogger(__name__)

MAX_CACHED_TARGETS = 1024  # distinct targets whose resolution is kept; the cache starts over beyond it

T = TypeVar("T")
Resolve = Callable[[str], ResolvedTarget]
Build = Callable[[HybridSearcher, str, bool], IndexSearcher]


class TargetRefused(Exception):
    """A hybrid search's target is not the served index; the message says why (a 400)."""


class ResolutionFailed(Exception):
    """The cluster could not say what a target stands for; `error` is the cluster's (or dsr's) failure."""

    def __init__(self, error: EngineError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Answer:
    """A hybrid search's result and the concrete index it ran on (the hits' `_index`)."""

    index: str
    result: HybridResult


class Resolutions:
    """What targets stand for, each asked of the cluster at most once per `ttl_s`.

    A failure is kept as long as an answer, so a cluster that refuses dsr's credentials (or is down)
    is not asked again on every search.
    """

    def __init__(self, resolve: Resolve, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._resolve = resolve
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, ResolvedTarget | EngineError]] = {}
        self._lock = threading.Lock()

    def get(self, target: str) -> ResolvedTarget:
        """What `target` stands for; raises the cluster's `EngineError` when it could not say."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(target)
        if cached is not None and cached[0] > now:
            answer = cached[1]
        else:
            try:
                answer = self._resolve(target)
            except EngineError as e:
                answer = e
            with self._lock:
                if len(self._cache) >= MAX_CACHED_TARGETS:
                    self._cache.clear()
                self._cache[target] = (now + self.ttl_s, answer)
        if isinstance(answer, EngineError):
            raise answer.with_traceback(None)  # the same error each time, not a longer traceback
        return answer


class _Served:
    """One concrete index's searcher, and the searches running on it."""

    def __init__(self, index: str, built: IndexSearcher, now: float) -> None:
        self.index = index
        self.built = built
        self.checked = now  # when its missing sidecar was last looked for
        self.active = 0
        self.retired = False

    def release(self) -> None:
        self.built.searcher.close()
        for held in self.built.owned:
            close = getattr(held, "close", None)
            if close is not None:
                close()


class ServedIndex:
    """The index `dsr serve --index NAME` serves, followed through alias swaps.

    Args:
        name: `--index` as given: an index or an alias.
        template: the searcher made at start; its backend, models and defaults serve every index
            (each index's searcher is made from the one before, so nothing is loaded twice).
        build: the searcher of a concrete index made from another (`components.searcher_for_index`);
            its last argument says whether the index is the first one served.
        resolve: the backend's `resolve_index`; None (the embedded index, which has no aliases):
            only NAME itself is served.
        ttl_s: how long a resolution is kept, and how often a missing sidecar is looked for.
    """

    def __init__(self, name: str, template: HybridSearcher, build: Build, *, resolve: Resolve | None,
                 ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._model: HybridSearcher | None = template  # what the next index's searcher is made from
        self._build = build
        self._resolutions = Resolutions(resolve, ttl_s, clock=clock) if resolve is not None else None
        self._ttl_s = ttl_s
        self._clock = clock
        self._current: _Served | None = None
        self._lock = threading.Lock()  # the current entry and the searches on each
        self._building = threading.Lock()  # one searcher built at a time
        self._unresolved: str | None = None  # the failure to resolve NAME last logged

    def run(self, target: str, request: SearchRequest) -> Answer:
        """`request` on the index `target` stands for: refused (`TargetRefused`) unless that is the served one."""
        served = self._acquire(self._concrete(target))
        try:
            result = served.built.searcher.run(request)
        finally:
            self._done(served)
        if served.built.warning:
            result = replace(result, degraded=True, warnings=(served.built.warning, *result.warnings))
        return Answer(served.index, result)

    def close(self) -> None:
        with self._lock:
            current, self._current = self._current, None
            model, self._model = self._model, None
        if current is not None:
            self._retire(current)
        if model is not None and (current is None or current.built.searcher is not model):
            model.close()

    def run_with(self, target: str, call: Callable[[HybridSearcher], T]) -> tuple[str, T, str | None]:
        """`call` with the searcher of the index `target` stands for (refused unless it is the served one).

        Returns the concrete index, what `call` returned, and the warning of that index's searcher
        (why its searches are term-only), if any.
        """
        served = self._acquire(self._concrete(target))
        try:
            out = call(served.built.searcher)
        finally:
            self._done(served)
        return served.index, out, served.built.warning

    def known_index(self) -> str | None:
        """The concrete index served now (asks the cluster nothing): the one last searched, else the one
        the name stood for at start."""
        current = self._current
        if current is not None:
            return current.index
        model = self._model
        return model.index if model is not None else None

    # -- which index -----------------------------------------------------------------------
    def served_index(self) -> str:
        """The concrete index NAME stands for now (NAME itself while that is unknown)."""
        current = self._current
        if self._resolutions is None:
            return self.name
        try:
            resolved = self._resolutions.get(self.name)
        except EngineError as e:
            if str(e) != self._unresolved:  # once per failure, not once per search
                log.warning("cannot resolve the served index [%s]; serving [%s] as before: %s", self.name,
                            current.index if current is not None else self.name, e)
                self._unresolved = str(e)
            return current.index if current is not None else self.name
        self._unresolved = None
        if len(resolved.indexes) == 1 and not resolved.filtered_aliases:
            return resolved.indexes[0]
        # a swap half made (several indexes), the index gone, or a filtered alias: as before
        return current.index if current is not None else self.name

    def _concrete(self, target: str) -> str:
        try:
            served = self.served_index()
            if target in (self.name, served):
                return served
            if self._resolutions is None:
                raise self._refused(target, served, "no such index is served")
            resolved = self._resolutions.get(target)
        except EngineError as e:
            raise ResolutionFailed(e) from None
        if resolved.filtered_aliases:
            raise self._refused(target, served, f"it names alias(es) [{', '.join(resolved.filtered_aliases)}] with "
                                "a filter or routing, which the vector neighbours would not pass through")
        if not resolved.indexes:
            raise self._refused(target, served, "no index or alias matches it")
        if len(resolved.indexes) > 1:
            raise self._refused(target, served, f"it resolves to {len(resolved.indexes)} indexes "
                                f"[{', '.join(resolved.indexes)}] and a hybrid search runs on one")
        if resolved.indexes[0] != served:
            raise self._refused(target, served, f"it resolves to [{resolved.indexes[0]}], which dsr does not serve")
        return served

    def _refused(self, target: str, served: str, why: str) -> TargetRefused:
        now = f" (now [{served}])" if served != self.name else ""
        return TargetRefused(f"ext.dsr searches are served for index [{self.name}]{now} only, not [{target}]: {why}")

    # -- its searcher ----------------------------------------------------------------------
    def _acquire(self, index: str) -> _Served:
        with self._lock:
            seen = self._current
            if seen is not None and seen.index == index and not self._sidecar_appeared(seen):
                seen.active += 1
                return seen
        with self._building:
            with self._lock:
                current = self._current
                if current is not None and current is not seen and current.index == index:
                    current.active += 1  # built meanwhile by another search
                    return current
                model = self._model
            if model is None:
                raise ResolutionFailed(EngineError("dsr serve is shutting down"))
            first = current is None
            built = self._build(model, index, first)
            fresh = _Served(index, built, self._clock())
            with self._lock:
                previous, self._current = self._current, fresh
                self._model = built.searcher
                fresh.active += 1
        if first and built.searcher is not model:
            model.close()  # the searcher made at start: its parts live on in the index's own
        if first and index != self.name:
            log.info("dsr serve: [%s] is index [%s]; serving it", self.name, index)
        if previous is not None:
            if previous.index != index:
                log.info("dsr serve: [%s] moved from index [%s] to [%s]; %s", self.name, previous.index, index,
                         built.warning or "serving it with its own vector side")
            elif built.warning is None:
                log.info("dsr serve: index [%s] has its sidecar now; its searches are hybrid again", index)
            elif built.warning != previous.built.warning:
                log.warning("dsr serve: %s", built.warning)
            self._retire(previous)
        return fresh

    def _sidecar_appeared(self, current: _Served) -> bool:
        """Whether the sidecar a term-only index waits for exists now (looked for once per ttl)."""
        missing = current.built.missing_sidecar
        if missing is None:
            return False
        now = self._clock()
        if now - current.checked < self._ttl_s:
            return False
        current.checked = now
        return missing.is_dir()

    def _done(self, served: _Served) -> None:
        with self._lock:
            served.active -= 1
            release = served.retired and served.active == 0
        if release:
            served.release()

    def _retire(self, served: _Served) -> None:
        with self._lock:
            served.retired = True
            release = served.active == 0
        if release:
            served.release()


def startup_index(name: str, resolve: Resolve | None) -> str:
    """The concrete index `name` stands for at start (to find its sidecar), else `name` itself."""
    if resolve is None:
        return name
    try:
        resolved = resolve(name)
    except EngineError as e:
        log.warning("cannot resolve [%s] at start: %s", name, e)
        return name
    return resolved.indexes[0] if len(resolved.indexes) == 1 and not resolved.filtered_aliases else name


def served_index(settings: ServeSettings, searcher: HybridSearcher) -> ServedIndex:
    """The `ServedIndex` of `settings.index`, its searchers made from `searcher` (the one made at start)."""
    build = functools.partial(searcher_for_index, settings=settings, mode=vector_mode(searcher, settings))
    resolve = None if settings.embedded else getattr(searcher.backend, "resolve_index", None)
    return ServedIndex(settings.index, searcher, build, resolve=resolve, ttl_s=settings.resolve_ttl_s)
