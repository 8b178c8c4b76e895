"""`Sources`: documents fetched once, ids gone from the index remembered, and one bounded retry."""

from __future__ import annotations

from dsr.backends.base import Hit
from dsr.search.sources import Sources, SourcesGone
from dsr.search.timings import Timings

from ...support.shoes import MgetCounting
from .conftest import INDEX


def test_fetch_gets_what_is_unknown_once_and_remembers_what_is_gone(backend):
    spy = MgetCounting(backend)
    sources = Sources(spy, INDEX, Timings())  # type: ignore[arg-type]
    sources.add([Hit("p001", 1.0, {"title": "from the term side"})])
    assert sources.fetch(["p001", "p002", "ghost", "p002"]) == {"ghost"}
    assert spy.mget_ids == [["p002", "ghost"]]
    assert sources.get("p001") == {"title": "from the term side"} and sources.get("p002")["title"]
    assert sources.fetch(["p001", "p002", "ghost"]) == set() and len(spy.mget_ids) == 1
    assert sources.gone == {"ghost"}


def test_settle_starts_over_while_sources_are_gone_at_most_rounds_times(backend):
    sources = Sources(backend, INDEX, Timings(), rounds=3)
    wanted = iter([["p001", "ghost-a"], ["p002", "ghost-b"], ["p003", "ghost-c"], ["p004"]])
    rounds = []

    def attempt() -> list[str]:
        ids = next(wanted)
        rounds.append(ids)
        sources.require(ids)
        return [i for i in ids if i not in sources.gone]

    assert sources.settle(attempt) == ["p003"]  # the last round keeps what it has
    assert len(rounds) == 3 and sources.gone == {"ghost-a", "ghost-b", "ghost-c"}
    assert sources.warning() == ("3 vector neighbour(s) not found in index 'products' (sidecar out of sync); "
                                 "skipped")


def test_require_outside_settle_never_starts_over(backend):
    sources = Sources(backend, INDEX, Timings())
    sources.require(["ghost"])
    assert sources.gone == {"ghost"} and sources.warning() is not None


def test_a_round_that_finds_everything_ends_the_loop(backend):
    sources = Sources(backend, INDEX, Timings())
    calls = []
    sources.settle(lambda: calls.append(sources.require(["p001"])))
    assert len(calls) == 1 and sources.warning() is None


def test_a_hit_that_arrives_with_its_source_is_not_gone(backend):
    sources = Sources(backend, INDEX, Timings())
    sources.fetch(["p999"])
    sources.add([Hit("p999", 1.0, {"title": "just indexed"})])
    assert sources.gone == set()


def test_sources_gone_is_raised_only_inside_a_round_that_can_start_over(backend):
    sources = Sources(backend, INDEX, Timings(), rounds=2)
    seen: list[type[BaseException] | None] = []

    def attempt() -> None:
        try:
            sources.require([f"ghost-{len(seen)}"])
            seen.append(None)
        except SourcesGone:
            seen.append(SourcesGone)
            raise

    sources.settle(attempt)
    assert seen == [SourcesGone, None]
