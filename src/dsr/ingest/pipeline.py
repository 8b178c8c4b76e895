"""The ingest pipeline: read -> validate -> encode -> cluster (acknowledged) -> sidecar -> checkpoint.

Order matters for consistency. A batch reaches the sidecar only after the cluster acknowledged it,
and only the acknowledged ids; a document the cluster refused goes to the rejects file instead. The
checkpoint moves forward only after both stores (and the rejects file) are durable, so a crash at any
point leaves at most one batch to redo, and redoing it is harmless: both stores upsert by id.
The sidecar also keeps a record of each item with every field a ranker can read (`dsr.sidecar.items`),
so serving needs no `mget` to re-rank sidecar neighbours, whichever ranker it serves.

Whose index it is decides what reaches the cluster (`dsr.ingest.target`, read before anything is
written): whole documents into an index dsr created (or one handed over with `replace_documents`),
the vector field alone, by partial updates, into a shop's own index, whose documents keep every
field; a row such an index does not hold is rejected, never created, and deletions reach only the
sidecar.

A resumed run re-checks, while it skips the rows the checkpoint counts as done, that the sidecar still
holds them (and no longer holds the deleted ones), and re-writes what it lost. A finished run leaves a
completion record (`dsr.ingest.checkpoint.Completion`); running it again with nothing changed writes
nothing and says so, unless `force` is set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dsr.backends.base import EMBEDDING_FIELD, IndexSpec, SearchBackend
from dsr.catalog.readers import SourceRow, detect_format, progress_total, read_catalog
from dsr.catalog.validate import Limits, check_id, validate_row
from dsr.encoders.base import Encoder
from dsr.errors import UsageError
from dsr.ingest.batch_run import (
    EXIT_OK,
    EXIT_REJECTED,  # noqa: F401  # importable from here, as before
    EXIT_TOO_MANY_REJECTS,  # noqa: F401
    BatchRun,
    acknowledged,
    check_batch_options,
    exit_code,
    model_identity,
    open_sidecar,
    report_dict,
)
from dsr.ingest.checkpoint import (
    Checkpoint,
    Completion,
    RejectsFile,
    completion_path,
    fingerprint,
    sidecar_state,
)
from dsr.ingest.target import NOT_IN_INDEX, ClusterWrites, IngestTarget, plan_target
from dsr.ingest.writer import ClusterWriter, WriteOutcome
from dsr.sidecar.storage import sha256_file
from dsr.sidecar.store import SidecarStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int = 256
    max_rejects: int | None = None
    embed_in_cluster: bool = True  # also store the vector in the cluster (for the engine's own kNN)
    fmt: str | None = None
    sidecar_kind: str = "auto"
    limits: Limits = field(default_factory=Limits)
    progress: bool = True
    force: bool = False  # ingest from the top even when a completion record or a checkpoint says otherwise
    replace_documents: bool = False  # write whole documents (and delete them) even in an index dsr did not create

    def __post_init__(self) -> None:
        check_batch_options(self.batch_size, self.max_rejects)


@dataclass
class IngestReport:
    """What a run did. `cluster_retries` counts the bulk requests that re-sent documents the cluster
    had refused with 429 (the backend's backoff, for writes and deletions alike); a run that could not
    reach the cluster stops with an error instead, and its re-run resumes from the checkpoint.
    `restored` counts the items a resumed run found missing from the sidecar (or still in it, when
    deleted) although the checkpoint counted them as done, and wrote again. `up_to_date` says the run
    wrote nothing because the catalog was already ingested (`ingested_at`); the counts are that run's."""

    index: str
    catalog: str | None
    sidecar: str
    rejects_file: str
    read: int = 0
    written: int = 0
    deleted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0
    cluster_seconds: float = 0.0
    sidecar_seconds: float = 0.0
    resumed_from_row: int = 0
    done_before_resume: int = 0  # items written/deleted by the run(s) this one resumed
    cluster_retries: int = 0
    sidecar_count: int = 0
    restored: int = 0
    stopped: bool = False
    up_to_date: bool = False
    ingested_at: str | None = None
    exit_code: int = EXIT_OK
    cluster_writes: str = ClusterWrites.DOCUMENTS.value  # what reached the cluster (`ClusterWrites`)
    notes: list[str] = field(default_factory=list)  # what the run decided about the cluster side, to tell the user

    @property
    def items_per_second(self) -> float:
        done = self.written + self.deleted - self.done_before_resume
        return done / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return report_dict(self)

    def summary(self) -> str:
        if self.up_to_date:
            return (f"nothing to do: {self.catalog} is unchanged since it was ingested into {self.index} at "
                    f"{self.ingested_at} (read {self.read}, written {self.written}, deleted {self.deleted}, "
                    f"rejected {self.rejected}" + (f"; rejects in {self.rejects_file}" if self.rejected else "")
                    + "); nothing was written; use --force to ingest it again")
        status = "stopped: too many rejects" if self.stopped else "done"
        return (f"{status}: read {self.read}, written {self.written}, deleted {self.deleted}, "
                f"rejected {self.rejected} in {self.seconds:.1f}s ({self.items_per_second:.0f} items/s)"
                + (f"; rejects in {self.rejects_file}" if self.rejected else "")
                + (f"; re-wrote {self.restored} items the sidecar had lost" if self.restored else ""))


@dataclass
class _Pending:
    row: SourceRow
    item: dict[str, Any]
    deleted: bool


class _Run(BatchRun[IngestReport, IngestOptions]):
    """State of one ingest run: the two stores, the rejects file, counters and timers."""

    def __init__(self, backend: SearchBackend, index: str, encoder: Encoder, store: SidecarStore,
                 rejects: RejectsFile, options: IngestOptions, report: IngestReport, target: IngestTarget) -> None:
        super().__init__(encoder, store, rejects, options, report)
        # a shop's index is written (and read) behind an alias at its write index, where the mapping was read
        self.writer = ClusterWriter(backend, target.write_index if target.shop_index else index)
        self.target = target

    def flush(self, batch: list[_Pending]) -> None:
        upserts = [p for p in batch if not p.deleted]
        deletes = [p for p in batch if p.deleted]
        if upserts:
            self._write(upserts)
        if deletes:
            self._delete(deletes)

    def _write(self, upserts: list[_Pending]) -> None:
        report = self.report
        vectors = self.encode([p.item for p in upserts])
        t1 = time.perf_counter()
        outcome = self._write_cluster(upserts, vectors)
        t2 = time.perf_counter()
        report.cluster_seconds += t2 - t1
        report.cluster_retries += outcome.retries
        by_id = {p.item["id"]: p for p in upserts}
        for failure in outcome.failed:
            pending = by_id[failure.id]
            reason = (NOT_IN_INDEX if self.target.shop_index and failure.status == 404
                      else f"cluster refused the document (HTTP {failure.status}): {failure.reason}")
            self.reject(pending.row.line, failure.id, reason, pending.row.raw)
        keep = acknowledged([p.item["id"] for p in upserts], outcome)
        if keep:
            self.store.upsert([upserts[i].item["id"] for i in keep], vectors[keep], [upserts[i].item for i in keep])
        report.sidecar_seconds += time.perf_counter() - t2
        report.written += len(keep)

    def _write_cluster(self, upserts: list[_Pending], vectors: np.ndarray) -> WriteOutcome:
        """Whole documents into dsr's own index; the vector alone into a shop's; there, nothing for a
        row the index does not hold (it fails as not found, for the rejects file)."""
        writes = self.target.writes
        if writes is ClusterWrites.DOCUMENTS:
            if self.target.vectors:
                return self.writer.upsert([{**p.item, EMBEDDING_FIELD: vectors[i].tolist()}
                                           for i, p in enumerate(upserts)])
            return self.writer.upsert([p.item for p in upserts])
        if writes is ClusterWrites.VECTORS:
            return self.writer.update([{"id": p.item["id"], EMBEDDING_FIELD: vectors[i].tolist()}
                                       for i, p in enumerate(upserts)])
        return self.writer.present([p.item["id"] for p in upserts])

    def _delete(self, deletes: list[_Pending]) -> None:
        ids = [p.item["id"] for p in deletes]
        t0 = time.perf_counter()
        # a shop's documents are never deleted: the items leave the sidecar (and its records) only
        outcome = self.writer.delete(ids) if not self.target.shop_index else WriteOutcome(list(ids))
        t1 = time.perf_counter()
        self.report.cluster_seconds += t1 - t0
        self.report.cluster_retries += outcome.retries
        by_id = {p.item["id"]: p for p in deletes}
        for failure in outcome.failed:
            pending = by_id[failure.id]
            self.reject(pending.row.line, failure.id,
                        f"cluster refused the deletion (HTTP {failure.status}): {failure.reason}", pending.row.raw)
        acked = [i for i in ids if i in set(outcome.acknowledged)]
        self.store.delete(acked)
        self.report.sidecar_seconds += time.perf_counter() - t1
        self.report.deleted += len(acked)

    def restore(self, lost: list[_Pending]) -> None:
        """Write to the sidecar alone what it lost although the cluster acknowledged it (and the checkpoint)."""
        upserts = [p for p in lost if not p.deleted]
        if upserts:
            vectors = self.encode([p.item for p in upserts])
            t1 = time.perf_counter()
            self.store.upsert([p.item["id"] for p in upserts], vectors, [p.item for p in upserts])
            self.report.sidecar_seconds += time.perf_counter() - t1
        deletes = [p.item["id"] for p in lost if p.deleted]
        if deletes:
            self.store.delete(deletes)
        self.report.restored += len(lost)

    def lost(self, pending: _Pending) -> bool:
        """Whether the sidecar disagrees with a row the checkpoint counts as done."""
        return (pending.item["id"] in self.store.index) == pending.deleted


def _progress_bar(total: int | None, unit: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=unit == "B", desc="ingest", disable=not enabled,
                mininterval=0.5, dynamic_ncols=True, leave=False)


def ingest(
    catalog: Path | None,
    *,
    backend: SearchBackend,
    index: str,
    encoder: Encoder,
    sidecar_dir: Path,
    rejects_path: Path,
    checkpoint_path: Path,
    delete_ids: Iterable[tuple[int, str | None]] | None = None,
    options: IngestOptions = IngestOptions(),
    model: Mapping[str, Any] | None = None,
) -> IngestReport:
    """Ingest `catalog` (and/or delete `delete_ids`, pairs of line number and id) into both stores.

    `model` identifies the encoder beyond its type and dimension (`checkpoint.model_identity`), for the
    completion record: a finished ingest of the same catalog with the same model is not repeated. Without
    it the encoder cannot be told from a retrained one of the same kind, so the run is never skipped.
    Neither is one with `delete_ids`, which asks for a change of its own.
    """
    started = time.perf_counter()
    report = IngestReport(index=index, catalog=str(catalog) if catalog else None, sidecar=str(sidecar_dir),
                          rejects_file=str(rejects_path))
    identity = model_identity(encoder, model)
    done_path = completion_path(checkpoint_path)
    if catalog is not None:
        if not Path(catalog).is_file():  # before anything is written, and before the sidecar is opened
            raise UsageError(f"catalog file not found: {catalog}")
        detect_format(Path(catalog), options.fmt)  # a bad format is a usage error before anything is written
        if delete_ids is None and model is not None and not options.force and _already_done(
                report, Path(catalog), backend, index, identity, options, sidecar_dir, done_path):
            report.seconds = time.perf_counter() - started
            return report
    target = plan_target(backend, index, dims=encoder.dim, embed_in_cluster=options.embed_in_cluster,
                         replace_documents=options.replace_documents)  # before anything is written
    report.cluster_writes = target.writes.value
    report.notes = list(target.notes)
    for note in target.notes:
        log.info("%s", note)
    done_path.unlink(missing_ok=True)  # from here on the stores change: the record would no longer be true
    backend.ensure_index(IndexSpec(index, dims=encoder.dim if target.vectors else None))
    if target.add_vector_mapping:
        backend.add_vector_mapping(target.write_index, IndexSpec(index, dims=encoder.dim))
    store = open_sidecar(sidecar_dir, encoder, options.sidecar_kind)
    checkpoint: Checkpoint | None = None
    resume = None
    if catalog is not None:
        catalog = Path(catalog)
        resume = None if options.force else Checkpoint.load(checkpoint_path)
        if resume is not None and not resume.matches(catalog, index):
            log.warning("checkpoint %s is for another catalog or index; starting from the top", checkpoint_path)
            resume = None
        checkpoint = resume or Checkpoint(str(catalog.resolve()), index, fingerprint(catalog))
    rejects = RejectsFile(rejects_path, keep_bytes=resume.rejects_bytes if resume else 0)
    if resume:
        for key in ("read", "written", "deleted", "rejected"):
            setattr(report, key, int(resume.counts.get(key, 0)))
        report.resumed_from_row = resume.rows_done
        report.done_before_resume = report.written + report.deleted
    run = _Run(backend, index, encoder, store, rejects, options, report, target)
    try:
        if catalog is not None and checkpoint is not None:
            _ingest_rows(run, catalog, checkpoint, checkpoint_path)
        if delete_ids is not None and not report.stopped:
            _delete_ids(run, delete_ids)
        run.finish(checkpoint_path, complete=catalog is not None and not report.stopped)
        backend.refresh(index)
    finally:
        run.close()
    report.sidecar_count = len(store)
    report.exit_code = exit_code(report)
    if catalog is not None and checkpoint is not None and not report.stopped and delete_ids is None:
        _record_completion(report, catalog, checkpoint, backend, identity, options, sidecar_dir, done_path)
    report.seconds = time.perf_counter() - started
    return report


def _run_options(options: IngestOptions, catalog: Path) -> dict[str, Any]:
    """The options that change what an ingest writes (the batch size, say, does not)."""
    out = {"format": detect_format(catalog, options.fmt), "embed_in_cluster": options.embed_in_cluster,
           "limits": json.loads(json.dumps(asdict(options.limits)))}
    if options.replace_documents:  # only when set: records of runs before the option still match
        out["replace_documents"] = True
    return out


def _cluster_count(backend: SearchBackend, index: str) -> int | None:
    return backend.count(index) if backend.index_exists(index) else None


def _already_done(report: IngestReport, catalog: Path, backend: SearchBackend, index: str,
                  identity: dict[str, Any], options: IngestOptions, sidecar_dir: Path, done_path: Path) -> bool:
    """Whether the completion record says this very ingest already finished; fills `report` from it if so."""
    previous = Completion.load(done_path)
    if previous is None:
        return False
    change = previous.change_since(catalog=catalog, index=index, model=identity,
                                   options=_run_options(options, catalog), sidecar=sidecar_dir,
                                   cluster_count=_cluster_count(backend, index))
    if change is not None:
        log.info("ingesting %s again: %s", catalog, change)
        return False
    for key in ("read", "written", "deleted", "rejected"):
        setattr(report, key, int(previous.counts.get(key, 0)))
    report.up_to_date = True
    report.ingested_at = previous.finished_at
    report.rejects_file = previous.rejects_file
    report.sidecar_count = int(previous.counts.get("sidecar_count", 0))
    report.exit_code = exit_code(report)
    return True


def _record_completion(report: IngestReport, catalog: Path, checkpoint: Checkpoint, backend: SearchBackend,
                       identity: dict[str, Any], options: IngestOptions, sidecar_dir: Path, done_path: Path) -> None:
    if fingerprint(catalog) != checkpoint.fingerprint:
        log.warning("%s changed while it was being ingested; run the ingest again to take the changes", catalog)
        return
    counts = {"read": report.read, "written": report.written, "deleted": report.deleted,
              "rejected": report.rejected, "sidecar_count": report.sidecar_count}
    Completion(catalog=str(catalog.resolve()), index=report.index, fingerprint=checkpoint.fingerprint,
               sha256=sha256_file(catalog), model=identity, options=_run_options(options, catalog),
               sidecar=str(Path(sidecar_dir).resolve()), sidecar_state=sidecar_state(sidecar_dir),
               cluster_count=backend.count(report.index), counts=counts, rejects_file=report.rejects_file,
               finished_at=datetime.now(UTC).isoformat(timespec="seconds")).save(done_path)


def _ingest_rows(run: _Run, catalog: Path, checkpoint: Checkpoint, checkpoint_path: Path) -> None:
    options, report = run.options, run.report
    fmt = detect_format(catalog, options.fmt)
    seen: dict[str, int] = {}
    batch: list[_Pending] = []
    rows_done = checkpoint.rows_done
    bar = _progress_bar(progress_total(catalog, fmt), "B" if fmt != "parquet" else "rows", options.progress)
    last_position = 0
    t_start = time.perf_counter()
    rejected_lines = _rejected_lines(run.rejects.path, checkpoint.rejects_bytes) if checkpoint.rows_done else set()
    lost: list[_Pending] = []

    def restore_lost() -> None:
        if lost:
            run.restore(lost)
            lost.clear()

    def commit(rows: int) -> None:
        run.flush(batch)
        batch.clear()
        checkpoint.rows_done = rows
        run.save_progress(checkpoint, checkpoint_path, {"read": report.read, "written": report.written,
                                                        "deleted": report.deleted, "rejected": report.rejected})

    try:
        for number, row in enumerate(read_catalog(catalog, fmt)):
            bar.update(row.position - last_position)
            last_position = row.position
            if number < checkpoint.rows_done:
                taken = _remember(row, seen, options.limits)  # replay for duplicate detection
                if taken is not None and row.line not in rejected_lines and run.lost(taken):
                    lost.append(taken)
                    if len(lost) >= options.batch_size:
                        restore_lost()
                continue
            restore_lost()
            report.read += 1
            _take(run, row, seen, batch)
            rows_done = number + 1
            if run.over_limit:
                commit(rows_done)
                report.stopped = True
                break
            if len(batch) >= options.batch_size:
                commit(rows_done)
                elapsed = time.perf_counter() - t_start
                done = report.written + report.deleted - report.done_before_resume
                bar.set_postfix(items_s=f"{done / max(elapsed, 1e-9):.0f}",
                                rejected=report.rejected, refresh=False)
        else:
            restore_lost()
            commit(rows_done)
    finally:
        bar.close()
    if report.restored:
        log.warning("the sidecar %s lacked %d items the checkpoint counted as done (a journal record was lost); "
                    "re-encoded and re-wrote them", run.store.directory, report.restored)


def _remember(row: SourceRow, seen: dict[str, int], limits: Limits) -> _Pending | None:
    """Note a row a previous run already took; returns it when it was written or deleted (not a duplicate)."""
    if row.data is None:
        return None
    checked = validate_row(row.data, limits)
    if checked.item is None or checked.item["id"] in seen:
        return None
    seen[checked.item["id"]] = row.line
    return _Pending(row, checked.item, checked.deleted)


def _rejected_lines(path: Path, length: int) -> set[int]:
    """Lines of the rows a previous run rejected (the cluster's refusals among them: not in the sidecar)."""
    lines: set[int] = set()
    if length and path.exists():
        with path.open("rb") as f:
            for raw in f.read(length).splitlines():
                try:
                    line = json.loads(raw).get("line")
                except (ValueError, AttributeError):
                    continue
                if isinstance(line, int):
                    lines.add(line)
    return lines


def _take(run: _Run, row: SourceRow, seen: dict[str, int], batch: list[_Pending]) -> None:
    if row.data is None:
        run.reject(row.line, None, row.error or "unreadable row", row.raw)
        return
    checked = validate_row(row.data, run.options.limits)
    if checked.item is None:
        run.reject(row.line, checked.item_id, checked.reason or "invalid row", row.raw)
        return
    item_id = checked.item["id"]
    first = seen.get(item_id)
    if first is not None:
        run.reject(row.line, item_id, f"duplicate id (first seen on line {first})", row.raw)
        return
    seen[item_id] = row.line
    batch.append(_Pending(row, checked.item, checked.deleted))


def _delete_ids(run: _Run, delete_ids: Iterable[tuple[int, str | None]]) -> None:
    batch: list[_Pending] = []
    for line, raw_id in delete_ids:
        item_id, reason = check_id(raw_id, run.options.limits)
        if reason or item_id is None:
            run.reject(line, None, reason or "missing id", str(raw_id))
            continue
        batch.append(_Pending(SourceRow(line, str(raw_id), {"id": item_id}), {"id": item_id}, True))
        if len(batch) >= run.options.batch_size:
            run.flush(batch)
            batch.clear()
    run.flush(batch)


def read_delete_file(path: Path) -> Iterator[tuple[int, str | None]]:
    """Ids to delete: one per line, or jsonl rows with an `id` field; blank lines are skipped."""
    if not Path(path).is_file():
        raise UsageError(f"delete file not found: {path}")
    with Path(path).open("rb") as f:
        for number, bline in enumerate(f, 1):
            text = bline.decode("utf-8", "backslashreplace").strip()
            if not text:
                continue
            doc_id: str | None = text
            if text.startswith("{"):
                try:
                    doc_id = json.loads(text).get("id")
                except (ValueError, AttributeError):
                    doc_id = None
            yield number, doc_id
