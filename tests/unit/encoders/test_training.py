"""A short training run on the synthetic world: the towers learn from clicks what term matching
cannot see. BM25 is the embedded backend's term search over the same catalog."""

from __future__ import annotations

import numpy as np

from dsr.backends.base import IndexSpec
from dsr.backends.embedded import EmbeddedBackend
from dsr.encoders.model import TwoTowerModel
from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig, train_two_tower
from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.logs.triples import TripleConfig, build_triples


def _recall(ranked: list[list[str]], queries) -> float:
    return float(np.mean([len(set(q.relevant) & set(r[:100])) / len(q.relevant)
                          for q, r in zip(queries, ranked, strict=True)]))


def test_short_training_run_beats_bm25_on_no_overlap_queries(tmp_path):
    world = make_world(n_items=800, n_queries=100, n_users=30, seed=2)
    sessions = simulate_sessions(world, 2000, seed=2)
    ids = [r["id"] for r in world.catalog]
    triples = build_triples(sessions, ids, TripleConfig(negatives=("hard", "random")))
    model = TwoTowerModel.build(world.catalog, text_buckets=1 << 12, hidden=(64,), dim=32, device="cpu")
    result = train_two_tower(model, triples, world.catalog,
                             TrainConfig(schedule=TWO_TOWER_SCHEDULE.replace(
                                 epochs=4, batch_size=256, lr=5e-3, progress=False, seed=0)))
    assert result.n_triples == len(triples) and result.triples_per_s > 0
    assert result.epochs[-1].loss < result.epochs[0].loss

    no_overlap = [q for q in world.queries if q.no_overlap]
    assert len(no_overlap) >= 20
    item_vecs = model.encode_items(world.catalog)
    q_vecs = model.encode_queries([q.text for q in no_overlap])
    dsr_ranked = [[ids[j] for j in np.argsort(-(item_vecs @ v))[:100]] for v in q_vecs]

    backend = EmbeddedBackend(tmp_path / "engine")
    backend.ensure_index(IndexSpec("catalog"))
    backend.bulk_upsert("catalog", world.catalog)
    backend.refresh("catalog")
    bm25_ranked = [[h.id for h in backend.term_search("catalog", q.text, size=100)] for q in no_overlap]

    dsr, bm25 = _recall(dsr_ranked, no_overlap), _recall(bm25_ranked, no_overlap)
    print(f"no-overlap recall@100: dsr {dsr:.3f}, bm25 {bm25:.3f}")
    assert dsr > bm25 + 0.3, (dsr, bm25)
