"""`dsr sync`: bring the sidecar in step with writes that did not pass through `dsr serve`.

Two ways to find what changed, then the same re-read as the write-through (`Follower.refresh`):

* by an update-time field the user names (`since_field`): the documents whose field is at least the
  highest value the last pass saw, minus `overlap` (seconds for a date field, the field's own units
  for a number), so a write stamped slightly out of order, or made while the pass ran, is read again
  on the next pass rather than missed. The first pass reads every document that has the field.
* otherwise by `_seq_no`/`_primary_term`: one pass over the index's ids and versions (no sources),
  compared with the versions the sidecar last followed (`follow.sqlite`); ids that changed, or that
  the sidecar has never followed, are re-read. The first pass over a sidecar that never followed
  anything re-reads every document once.

Deletions are found in both by comparing id sets: the ids the sidecar holds that the index does not
are re-read (which confirms them gone) and deleted.

The guarantee: after a pass that ended at time T, every write the cluster acknowledged before the
pass started is in the sidecar (with `since_field`: every write whose field value, as stamped, lies
above the previous watermark minus the overlap). With `--follow`, the sidecar is at most one interval
plus one pass behind the index; `dsr verify` shows the drift that is left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dsr.ingest.follow import Follower, fold_journal
from dsr.sidecar.faiss_index import FaissIndex
from dsr.sidecar.storage import JOURNAL

WATERMARK_KEY = "since:{field}"
REFRESH_CHUNK = 500
SCROLL = "2m"
FOLD_BYTES = 64 * 1024 * 1024  # a journal larger than this is folded into a snapshot after a pass


@dataclass(frozen=True)
class SyncReport:
    index: str
    mode: str  # "since-field" or "seq_no"
    changed: int  # ids found changed (re-read)
    upserted: int
    deleted: int
    seconds: float
    watermark: float | None = None
    folded: bool = False  # the journal was folded into a new snapshot

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"synced {self.index} by {self.mode}: {self.changed} changed, {self.upserted} upserted, "
                f"{self.deleted} deleted in {self.seconds:.1f}s")


def _scan(client: Any, index: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    resp = client.search(index=index, scroll=SCROLL, body={**body, "size": 1000, "sort": ["_doc"]})
    scroll_id = resp.get("_scroll_id")
    try:
        while hits := resp["hits"]["hits"]:
            yield from hits
            resp = client.scroll(scroll_id=scroll_id, scroll=SCROLL)
            scroll_id = resp.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            with contextlib.suppress(Exception):  # the scroll expires on its own
                client.clear_scroll(scroll_id=scroll_id)


def sync_once(follower: Follower, *, since_field: str | None = None, overlap: float = 60.0,
              fold_bytes: int | None = FOLD_BYTES) -> SyncReport:
    """One pass: re-read what changed since the last pass and delete what the index no longer holds.

    Then, when the sidecar's journal has grown past `fold_bytes`, it is folded into a snapshot.
    """
    started = time.perf_counter()
    client, index = follower.client, follower.index
    client.indices.refresh(index=index)  # a search sees what a direct write made, as mget does
    watermark: float | None = None
    folded: bool = False  # the journal was folded into a new snapshot
    changed: list[str] = []
    in_index: set[str] = set()
    if since_field is not None:
        key = WATERMARK_KEY.format(field=since_field)
        agg = client.search(index=index, body={"size": 0, "aggs": {"last": {"max": {"field": since_field}}}})
        last = agg["aggregations"]["last"]
        is_date = "value_as_string" in last
        previous = follower.seen.get_meta(key)
        query: dict[str, Any] = {"exists": {"field": since_field}}
        if previous is not None:
            bound = float(previous) - (overlap * 1000 if is_date else overlap)
            query = {"range": {since_field: ({"gte": int(bound), "format": "epoch_millis"} if is_date
                                             else {"gte": bound})}}
        changed = [str(h["_id"]) for h in _scan(client, index, {"query": query, "_source": False})]
        in_index = {str(h["_id"]) for h in _scan(client, index, {"query": {"match_all": {}}, "_source": False})}
        watermark = last.get("value")
    else:
        seen = follower.seen.all()
        body = {"query": {"match_all": {}}, "_source": False, "seq_no_primary_term": True}
        for hit in _scan(client, index, body):
            doc_id = str(hit["_id"])
            in_index.add(doc_id)
            if seen.get(doc_id) != (int(hit.get("_primary_term", 0)), int(hit.get("_seq_no", -1))):
                changed.append(doc_id)
    held = set(FaissIndex.load(follower.sidecar_dir, device="cpu").ids())
    gone = sorted(held - in_index)
    todo = list(dict.fromkeys([*changed, *gone]))
    upserted = deleted = 0
    for start in range(0, len(todo), REFRESH_CHUNK):
        outcome = follower.refresh(todo[start:start + REFRESH_CHUNK])
        upserted += len(outcome.upserted)
        deleted += len(outcome.deleted)
    if since_field is not None and watermark is not None:
        follower.seen.set_meta(WATERMARK_KEY.format(field=since_field), repr(float(watermark)))
    journal = follower.sidecar_dir / JOURNAL
    folded = fold_bytes is not None and journal.exists() and journal.stat().st_size > fold_bytes
    if folded:
        fold_journal(follower.sidecar_dir)
    return SyncReport(index, "since-field" if since_field else "seq_no", len(changed), upserted, deleted,
                      time.perf_counter() - started, watermark, folded)
