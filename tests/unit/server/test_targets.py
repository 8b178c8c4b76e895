"""`ServedIndex`: when the cluster is asked what a name stands for, which index stays served while an
alias moves, and when a searcher is released (what the cluster answers is covered end to end)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dsr.backends.aliases import ResolvedTarget, resolved_target
from dsr.errors import EngineUnavailable
from dsr.search.fusion import FusionConfig
from dsr.search.request import SearchRequest
from dsr.search.result import HybridResult
from dsr.server.components import IndexSearcher
from dsr.server.targets import ResolutionFailed, ServedIndex, TargetRefused

REQUEST = SearchRequest("red sneakers")


class Searcher:
    """A searcher of one index whose searches may be held open, noting when it is closed."""

    def __init__(self, index: str) -> None:
        self.index = index
        self.closed = False
        self.hold: threading.Event | None = None
        self.started = threading.Event()

    def run(self, request: SearchRequest) -> HybridResult:
        assert not self.closed, "a closed searcher ran a search"
        self.started.set()
        if self.hold is not None:
            self.hold.wait(5)
        return HybridResult(hits=[], pool=0, term_hits=0, vector_hits=0, vector_source="none", reranked=0,
                            fusion=FusionConfig())

    def close(self) -> None:
        self.closed = True


class Cluster:
    """What each name stands for, as the cluster would say; counts the questions, or fails them."""

    def __init__(self, **names: tuple[str, ...]) -> None:
        self.names = {k.replace("_", "-"): v for k, v in names.items()}
        self.asked: list[str] = []
        self.down = False

    def resolve(self, target: str) -> ResolvedTarget:
        self.asked.append(target)
        if self.down:
            raise EngineUnavailable("cannot reach the cluster")
        return ResolvedTarget(target, self.names.get(target, ()))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def served(cluster: Cluster, clock: Clock, built: list[Searcher]) -> ServedIndex:
    def build(model: Any, index: str, first: bool) -> IndexSearcher:
        searcher = Searcher(index)
        built.append(searcher)
        return IndexSearcher(searcher)  # type: ignore[arg-type]

    return ServedIndex("products", Searcher("products"), build, resolve=cluster.resolve,  # type: ignore[arg-type]
                       ttl_s=5.0, clock=clock)


def test_what_a_name_stands_for_is_asked_once_per_ttl():
    cluster, clock, built = Cluster(products=("v1",), shop=("v1",)), Clock(), []
    s = served(cluster, clock, built)
    for _ in range(3):
        assert s.run("products", REQUEST).index == "v1"
        assert s.run("shop", REQUEST).index == "v1"
    assert cluster.asked == ["products", "shop"]
    clock.now = 5.0
    s.run("shop", REQUEST)
    assert cluster.asked == ["products", "shop", "products", "shop"]
    assert [b.index for b in built] == ["v1"]  # one searcher, made once


def test_the_served_index_is_kept_while_the_alias_reaches_several_and_followed_when_it_reaches_one(caplog):
    cluster, clock, built = Cluster(products=("v1",)), Clock(), []
    s = served(cluster, clock, built)
    assert s.run("products", REQUEST).index == "v1"
    cluster.names["products"] = ("v1", "v2")  # a swap made in two steps, half done
    clock.now = 5.0
    assert s.run("products", REQUEST).index == "v1"
    cluster.names["products"] = ("v2",)
    clock.now = 10.0
    with caplog.at_level("INFO", logger="dsr.server.targets"):
        assert s.run("products", REQUEST).index == "v2"
    assert [r.getMessage() for r in caplog.records] == [
        "dsr serve: [products] moved from index [v1] to [v2]; serving it with its own vector side"]
    assert built[0].closed and not built[1].closed


def test_the_previous_searcher_is_released_only_when_the_searches_on_it_end():
    cluster, clock, built = Cluster(products=("v1",)), Clock(), []
    s = served(cluster, clock, built)
    s.run("products", REQUEST)
    old = built[0]
    old.hold = threading.Event()
    running = threading.Thread(target=s.run, args=("products", REQUEST))
    running.start()
    assert old.started.wait(5)
    cluster.names["products"] = ("v2",)
    clock.now = 5.0
    assert s.run("products", REQUEST).index == "v2"
    assert not old.closed  # a search still runs on it
    old.hold.set()
    running.join(5)
    assert old.closed


def test_an_unreachable_cluster_keeps_the_served_index_and_fails_other_targets():
    cluster, clock, built = Cluster(products=("v1",)), Clock(), []
    s = served(cluster, clock, built)
    s.run("products", REQUEST)
    cluster.down = True
    clock.now = 5.0
    assert s.run("products", REQUEST).index == "v1"
    assert s.run("v1", REQUEST).index == "v1"
    with pytest.raises(ResolutionFailed) as failed:
        s.run("shop", REQUEST)
    assert isinstance(failed.value.error, EngineUnavailable)


def test_without_aliases_only_the_name_itself_is_served():
    s = ServedIndex("products", Searcher("products"), lambda m, i, f: IndexSearcher(m),  # type: ignore[arg-type]
                    resolve=None, ttl_s=5.0)
    assert s.run("products", REQUEST).index == "products"
    with pytest.raises(TargetRefused, match=r"served for index \[products\] only, not \[shop\]: no such index"):
        s.run("shop", REQUEST)


def test_a_filtered_alias_is_noted_when_the_target_names_it_exactly_or_by_a_pattern():
    answer = {"v1": {"aliases": {"shop": {}, "shop-red": {"filter": {"term": {"brand": "acme"}}},
                                 "shop-eu": {"search_routing": "eu"}}}}
    assert resolved_target("shop", answer).filtered_aliases == ()
    assert resolved_target("shop-red", answer).filtered_aliases == ("shop-red",)
    assert resolved_target("shop*,-shop-eu", answer).filtered_aliases == ("shop-red",)
    assert resolved_target("shop*", answer) == ResolvedTarget("shop*", ("v1",), ("shop-eu", "shop-red"))
