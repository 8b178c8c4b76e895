"""The item records ingest writes can stand in for the source for any trained ranker, not only the default one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xgboost as xgb

from dsr.backends import SearchBackend
from dsr.encoders.hashing import HashingEncoder
from dsr.ingest.pipeline import IngestOptions, ingest
from dsr.ingest.verify import verify
from dsr.reranker.base import Candidate
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.xgb import XGBoostRanker
from dsr.sidecar.items import ItemRecords, records_path

# popularity, rating and CTR under the shop's own names, one written as a string (as CSV has it)
OWN_FIELDS = FeatureConfig(popularity_fields=("units_sold",), rating_fields=("stars",), ctr_field="click_rate")


def shop_rows(n: int = 12) -> list[dict]:
    return [{"id": f"p{i:02d}", "title": f"cordless drill {i}", "brand": "acme" if i % 2 else "bolt",
             "category": "Tools > Drills", "price": 10.0 + i, "units_sold": 5 * i, "stars": f"{3 + i % 3}.5",
             "click_rate": 0.01 * i, "description": "a long text no ranker reads", "attributes": {"color": "red"}}
            for i in range(n)]


def ingested(backend: SearchBackend, index: str, tmp_path: Path, rows: list[dict]) -> Path:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sidecar = tmp_path / "sidecar"
    ingest(catalog, backend=backend, index=index, encoder=HashingEncoder(16), sidecar_dir=sidecar,
           rejects_path=tmp_path / "rejects.jsonl", checkpoint_path=tmp_path / "checkpoint.json",
           options=IngestOptions(batch_size=5, progress=False))
    return sidecar


def features(extractor: FeatureExtractor, items: list[dict]) -> dict[str, np.ndarray]:
    cands = [Candidate(item=it, bm25=float(i), dsr=0.5, fused_rank=i) for i, it in enumerate(items)]
    got = extractor.extract("cordless drill", cands, {"recent_clicks": items[:2]})
    return {name: getattr(got, name) for name in ("numeric", "query_ids", "item_ids", "click_ids", "click_cross")}


def test_a_ranker_trained_on_other_numeric_fields_is_covered_by_the_records_ingest_wrote(
        embedded_backend, index_name, tmp_path):
    rows = shop_rows()
    sidecar = ingested(embedded_backend, index_name, tmp_path, rows)
    ranker = XGBoostRanker(FeatureExtractor(OWN_FIELDS), xgb.Booster())
    assert not set(ranker.item_fields) <= set(FeatureConfig().item_fields)  # it reads fields the default does not

    records = ItemRecords.open_existing(sidecar)
    assert records is not None and records.covers(ranker.item_fields)
    recorded = records.get_many([r["id"] for r in rows])
    from_records = features(ranker.extractor, [recorded[r["id"]] for r in rows])
    from_sources = features(ranker.extractor, rows)
    for name, values in from_sources.items():
        np.testing.assert_array_equal(from_records[name], values, err_msg=name)
    assert from_sources["numeric"].std(axis=0).max() > 0  # the shop's own fields did reach the features
    assert "description" not in recorded["p01"] and "attributes" not in recorded["p01"]
    assert not records.covers(["title", "description"])


def test_records_of_the_default_fields_only_are_rewritten_by_verify_repair(embedded_backend, index_name, tmp_path):
    rows = shop_rows()
    sidecar = ingested(embedded_backend, index_name, tmp_path, rows)
    records_path(sidecar).unlink()  # records as an older dsr wrote them: the default ranker's fields only
    old = ItemRecords.open(sidecar, FeatureConfig().item_fields)
    old.upsert(rows)
    old.close()
    assert not old.covers(OWN_FIELDS.item_fields)

    drift = verify(embedded_backend, index_name, sidecar)
    assert len(drift.missing_records) == len(rows) and not drift.clean
    repaired = verify(embedded_backend, index_name, sidecar, repair=True)
    assert repaired.records_added == len(rows) and repaired.repaired
    records = ItemRecords.open_existing(sidecar)
    assert records is not None and records.covers(OWN_FIELDS.item_fields) and len(records) == len(rows)
    assert records.get_many(["p03"])["p03"]["units_sold"] == 15
    assert verify(embedded_backend, index_name, sidecar).clean
