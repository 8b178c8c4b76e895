"""`dsr verify`: compare the ids in the cluster and in the sidecar, report drift, optionally repair it.

The cluster is the source of truth (it holds the documents): ids missing from the sidecar are
re-encoded from their cluster source and added, ids only in the sidecar are removed from it. The
ranker's item records beside the vectors are checked the same way: a sidecar item without a record
(for instance one written before dsr kept records) gets one from its cluster source, and records of
items no longer in the sidecar are removed. Records that hold only a declared list of fields (as an
older dsr wrote them) count as missing: they cannot stand in for every ranker, and a repair rewrites
them all as ingest writes records now (`ItemRecords.open_for_every_scalar`).
A sidecar journal with a corrupt record will not load; a repair first sets its damaged part aside
(`set_aside_damaged_journal`), then re-adds what it held like any other missing id.
A repair writes to the sidecar alone and only reads the cluster, so it is as safe on a shop's own
index (one dsr did not create) as on dsr's: no document there is replaced, changed or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsr.backends.base import SearchBackend
from dsr.encoders.base import Encoder
from dsr.errors import UsageError
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.items import ItemRecords
from dsr.sidecar.storage import is_sidecar_dir, set_aside_damaged_journal
from dsr.sidecar.store import SidecarStore

SAMPLE = 20


@dataclass
class DriftReport:
    index: str
    sidecar: str
    cluster_count: int
    sidecar_count: int
    missing_in_sidecar: list[str] = field(default_factory=list)
    missing_in_cluster: list[str] = field(default_factory=list)
    missing_records: list[str] = field(default_factory=list)  # in the sidecar and the cluster, no ranker record
    stale_records: list[str] = field(default_factory=list)  # a ranker record, not in the sidecar
    added: int = 0
    removed: int = 0
    records_added: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing_in_sidecar or self.missing_in_cluster or self.missing_records or self.stale_records)

    @property
    def repaired(self) -> bool:
        return (self.added == len(self.missing_in_sidecar) and self.removed == len(self.missing_in_cluster)
                and self.records_added == len(self.missing_records))

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "sidecar": self.sidecar,
            "cluster_count": self.cluster_count,
            "sidecar_count": self.sidecar_count,
            "clean": self.clean,
            "missing_in_sidecar": len(self.missing_in_sidecar),
            "missing_in_cluster": len(self.missing_in_cluster),
            "missing_in_sidecar_sample": self.missing_in_sidecar[:SAMPLE],
            "missing_in_cluster_sample": self.missing_in_cluster[:SAMPLE],
            "missing_records": len(self.missing_records),
            "stale_records": len(self.stale_records),
            "added": self.added,
            "removed": self.removed,
            "records_added": self.records_added,
        }

    def summary(self) -> str:
        if self.clean:
            return f"clean: {self.cluster_count} ids in the cluster and in the sidecar"
        text = (f"drift: cluster {self.cluster_count}, sidecar {self.sidecar_count}; "
                f"{len(self.missing_in_sidecar)} missing in the sidecar "
                f"(e.g. {', '.join(self.missing_in_sidecar[:5]) or '-'}), "
                f"{len(self.missing_in_cluster)} only in the sidecar "
                f"(e.g. {', '.join(self.missing_in_cluster[:5]) or '-'}); "
                f"{len(self.missing_records)} without a ranker record, {len(self.stale_records)} stale records")
        if self.added or self.removed or self.records_added:
            text += f"; repaired: added {self.added}, removed {self.removed}, records added {self.records_added}"
        return text


def verify(backend: SearchBackend, index: str, sidecar_dir: Path, *, repair: bool = False,
           encoder: Encoder | None = None, batch_size: int = 256) -> DriftReport:
    backend.refresh(index)
    cluster_ids = set(backend.iter_ids(index))
    sidecar_ids: set[str] = set()
    sidecar_dim: int | None = None
    if is_sidecar_dir(sidecar_dir):
        if repair:  # a corrupt journal's damaged records are set aside; what they held is re-added below
            set_aside_damaged_journal(sidecar_dir)
        loaded = FaissIndex.load(sidecar_dir, device="cpu")
        sidecar_ids, sidecar_dim = set(loaded.ids()), loaded.dim
        del loaded
    records = ItemRecords.open_existing(sidecar_dir) if sidecar_ids else None
    record_ids = set(records.ids()) if records is not None and records.keeps_every_scalar else set()
    report = DriftReport(index, str(sidecar_dir), len(cluster_ids), len(sidecar_ids),
                         sorted(cluster_ids - sidecar_ids), sorted(sidecar_ids - cluster_ids),
                         sorted((sidecar_ids & cluster_ids) - record_ids), sorted(record_ids - sidecar_ids))
    if not repair or report.clean:
        return report
    if report.missing_in_sidecar and encoder is None:
        raise UsageError("repairing needs the item encoder the index was built with: pass --model")
    # the encoder only matters when vectors are written (the store checks it matches the sidecar then)
    dim = encoder.dim if report.missing_in_sidecar or sidecar_dim is None else sidecar_dim  # type: ignore[union-attr]
    with SidecarStore.open(sidecar_dir, dim=dim, device="cpu", keep_records=True) as store:
        assert store.records is not None
        for start in range(0, len(report.missing_records), batch_size):
            sources = backend.mget(index, report.missing_records[start:start + batch_size])
            store.records.upsert({**source, "id": doc_id} for doc_id, source in sources.items())
            report.records_added += len(sources)
        store.records.delete(report.stale_records)
        for start in range(0, len(report.missing_in_sidecar), batch_size):
            ids = report.missing_in_sidecar[start:start + batch_size]
            sources = backend.mget(index, ids)
            found = [i for i in ids if i in sources]
            if found:
                assert encoder is not None
                items = [{**sources[i], "id": i} for i in found]
                store.upsert(found, np.asarray(encoder.encode_items(items), np.float32), items)
                report.added += len(found)
        report.removed = store.delete(report.missing_in_cluster)
        store.checkpoint()
    return report
