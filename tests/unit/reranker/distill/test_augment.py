import json

import pytest

from dsr.errors import UsageError
from dsr.reranker.distill import AugmentConfig, CandidateSource, augment, read_scored
from dsr.reranker.distill.augment import CHECKPOINT

from .conftest import OverlapCandidates


class Interrupted(Exception):
    pass


class StopsAfter(OverlapCandidates):
    """Fails on its n-th call, as a killed run would stop part-way."""

    def __init__(self, catalog, fail_on: int) -> None:
        super().__init__(catalog)
        self.fail_on = fail_on

    def candidates(self, queries, k):
        if self.calls + 1 == self.fail_on:
            raise Interrupted
        return super().candidates(queries, k)


def _queries(tiny_world, n=9):
    return list(tiny_world.judged)[:n]


def _scored(folder):
    return [(r.query, r.item_id, round(r.score, 4)) for r in read_scored(folder)]


def _scored_in_one_go(tiny_world, queries, cfg, folder):
    """What a single uninterrupted run over `queries` writes: the reference for resumed runs."""
    augment(queries, tiny_world.teacher, tiny_world.catalog, folder,
            sources=[OverlapCandidates(tiny_world.world.catalog)], judged=tiny_world.judged, config=cfg)
    return _scored(folder)


def test_augment_scores_judged_and_new_candidates(tiny_world, tmp_path):
    src = OverlapCandidates(tiny_world.world.catalog)
    assert isinstance(src, CandidateSource)
    queries = _queries(tiny_world)
    report = augment(queries, tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[src],
                     judged=tiny_world.judged, config=AugmentConfig(k=5, shard_queries=4, batch_size=8))
    rows = list(read_scored(tmp_path))
    assert report.shards == 3 and report.pairs == len(rows)
    assert {r.query for r in rows} == set(queries)
    judged_rows = [r for r in rows if r.source == "judged"]
    assert len(judged_rows) == sum(len(tiny_world.judged[q]) for q in queries)
    new = [r for r in rows if r.source == "bm25"]
    assert new and all(r.item_id not in tiny_world.judged[r.query] for r in new)
    assert all("bm25" in r.first_stage for r in new)
    assert all(0.0 <= r.score <= 3.0 and len(r.probs) == 4 for r in rows)
    keys = [(r.query, r.item_id) for r in rows]
    assert len(keys) == len(set(keys))  # each pair scored once
    assert report.by_source == {"judged": len(judged_rows), "bm25": len(new)}


def test_max_new_per_query_caps_the_unjudged_candidates(tiny_world, tmp_path):
    src = OverlapCandidates(tiny_world.world.catalog)
    augment(_queries(tiny_world, 4), tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[src],
            judged=tiny_world.judged, config=AugmentConfig(k=10, max_new_per_query=2))
    per_query: dict[str, int] = {}
    for r in read_scored(tmp_path):
        if r.source != "judged":
            per_query[r.query] = per_query.get(r.query, 0) + 1
    assert per_query and max(per_query.values()) <= 2


def test_an_interrupted_run_resumes_without_redoing_finished_shards(tiny_world, tmp_path):
    queries = _queries(tiny_world)
    cfg = AugmentConfig(k=5, shard_queries=4)
    with pytest.raises(Interrupted):
        augment(queries, tiny_world.teacher, tiny_world.catalog, tmp_path / "a",
                sources=[StopsAfter(tiny_world.world.catalog, fail_on=2)], judged=tiny_world.judged, config=cfg)
    ckpt = json.loads((tmp_path / "a" / CHECKPOINT).read_text())
    assert ckpt["shards_done"] == 1 and ckpt["shards_total"] == 3
    with pytest.raises(UsageError, match="stopped after 1 of 3"):
        list(read_scored(tmp_path / "a"))
    resumed_src = OverlapCandidates(tiny_world.world.catalog)
    report = augment(queries, tiny_world.teacher, tiny_world.catalog, tmp_path / "a", sources=[resumed_src],
                     judged=tiny_world.judged, config=cfg)
    assert report.shards_resumed == 1 and resumed_src.calls == 2
    assert _scored(tmp_path / "a") == _scored_in_one_go(tiny_world, queries, cfg, tmp_path / "b")


def test_queries_appended_to_a_finished_run_score_only_the_new_shards(tiny_world, tmp_path):
    queries = _queries(tiny_world)
    cfg = AugmentConfig(k=5, shard_queries=4)
    augment(queries[:6], tiny_world.teacher, tiny_world.catalog, tmp_path / "a",
            sources=[OverlapCandidates(tiny_world.world.catalog)], judged=tiny_world.judged, config=cfg)
    extended_src = OverlapCandidates(tiny_world.world.catalog)
    report = augment(queries, tiny_world.teacher, tiny_world.catalog, tmp_path / "a", sources=[extended_src],
                     judged=tiny_world.judged, config=cfg)
    # the full first shard is kept; the half-full second one is redone with the queries that fill it
    assert report.shards == 3 and report.shards_resumed == 1 and extended_src.calls == 2
    assert _scored(tmp_path / "a") == _scored_in_one_go(tiny_world, queries, cfg, tmp_path / "b")


def test_a_run_whose_leading_queries_differ_is_refused(tiny_world, tmp_path):
    queries = _queries(tiny_world)
    src = OverlapCandidates(tiny_world.world.catalog)
    augment(queries[:4], tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[src], config=AugmentConfig(k=3))
    with pytest.raises(UsageError, match="another teacher, queries or settings"):
        augment(queries[1:], tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[src],
                config=AugmentConfig(k=3))


def test_a_folder_made_with_other_settings_is_refused(tiny_world, tmp_path):
    queries = _queries(tiny_world, 3)
    src = OverlapCandidates(tiny_world.world.catalog)
    augment(queries, tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[src], config=AugmentConfig(k=3))
    with pytest.raises(UsageError, match="another teacher, queries or settings"):
        augment(queries, tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[src],
                config=AugmentConfig(k=4))


def test_nothing_to_do_is_a_usage_error(tiny_world, tmp_path):
    with pytest.raises(UsageError, match="no queries"):
        augment(["  "], tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[])
    with pytest.raises(UsageError, match="no candidate source"):
        augment(["q"], tiny_world.teacher, tiny_world.catalog, tmp_path, sources=[])
    with pytest.raises(UsageError, match="no augmented data"):
        list(read_scored(tmp_path / "empty"))
