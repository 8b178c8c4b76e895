"""Pair building on real-format sessions: the OpenSearch UBI sample (ESCI queries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr.logs.load import load_logs
from dsr.reranker.pairs import PositionBias, build_pairs

UBI = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "esci-ubi" / "ubi_queries_events.ndjson"
if not UBI.is_file():
    UBI = Path("/work/shared/datasets/esci-ubi/ubi_queries_events.ndjson")


@pytest.mark.skipif(not UBI.is_file(), reason="the shared esci-ubi sample is not present")
def test_ubi_sessions_give_click_over_skip_pairs_and_every_session_is_accounted_for():
    sessions, _ = load_logs(UBI, applications=["esci_ubi_sample"])
    assert sessions
    out, report = build_pairs(sessions, bias=PositionBias(eta=1.0, max_weight=10.0))
    assert report.sessions == len(sessions)
    assert report.sessions_with_pairs + sum(report.no_pairs.values()) == len(sessions)
    assert report.sessions_with_pairs > 0 and report.pairs == sum(len(sp.pairs) for sp in out)
    for sp in out:
        s = sp.session
        preferred = set(s.clicks) | set(s.add_to_carts) | set(s.orders)
        for a, b, w in sp.pairs:
            assert sp.items[a] in preferred and sp.levels[a] > sp.levels[b]
            assert w == min(10.0, float(a + 1))  # weight = 1-based position of the preferred item
        # every clicked item is paired with every skipped impression of its session
        skipped = [i for i in sp.items if i not in preferred]
        assert len(sp.pairs) >= len(preferred & set(sp.items)) * len(skipped)
