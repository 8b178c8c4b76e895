"""Attach: build the sidecar of an index the shop already has, read from the cluster itself.

A shop that runs its own index has no catalog file to give `dsr ingest`, and its documents name their
fields its own way. Attach reads every document of the index (`iter_documents`: a point in time and
`search_after`, see `dsr.backends.documents`), maps the shop's fields onto dsr's item fields
(`dsr.ingest.field_map`), encodes the items with the item tower and writes the vectors and the item
records to the sidecar, through the same `SidecarStore` ingest uses. The item id is the document's
`_id`. The shop's documents are only read.

Resumable as ingest is. After each page is durable in the sidecar (and its rejects in the rejects
file) the checkpoint saves the read's cursor (the last page's sort values and its point in time), the
field map, the model and the counts. A re-run of the same command after a crash (SIGKILL included)
truncates the rejects file to the checkpoint's length and reads on from the cursor; the page in
flight when the process died is read and written again, which is harmless because the sidecar
upserts by id. A re-run with another model or other `--field` options starts from the top.

At the end the sidecar holds exactly the index's documents that could be encoded: a document that
is rejected now is deleted from the sidecar if an earlier attach put it there, and the ids of the
sidecar that the index no longer holds (deleted since an earlier attach, or while the read ran) are
removed. Documents written to the index after the read's point in time opened are not read; running
attach again takes them.

With `write_vectors` the vector also goes into the index, as ingest writes it into a shop's index
(`dsr.ingest.target`): the vector field is mapped by a mapping update if it is not yet, and each page's
vectors are set by partial updates, which keep every other field of the documents; a page reaches
the sidecar only after the cluster acknowledged it, and only its acknowledged documents. Where the
index cannot take a kNN vector field (an OpenSearch index created without `index.knn`) the run
refuses before it writes anything.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsr.backends.base import EMBEDDING_FIELD, IndexSpec, SearchBackend
from dsr.backends.documents import DEFAULT_KEEP_ALIVE, Cursor, Document, DocumentReader
from dsr.catalog.validate import Limits, validate_row
from dsr.encoders.base import Encoder
from dsr.errors import IndexNotFound, UsageError
from dsr.ingest.batch_run import (
    EXIT_OK,
    BatchRun,
    acknowledged,
    check_batch_options,
    exit_code,
    model_identity,
    open_sidecar,
    report_dict,
)
from dsr.ingest.checkpoint import RejectsFile
from dsr.ingest.field_map import FieldMap, build_field_map
from dsr.ingest.follow import save_field_map
from dsr.ingest.target import plan_target
from dsr.ingest.writer import ClusterWriter
from dsr.sidecar.storage import atomic_write_bytes
from dsr.sidecar.store import SidecarStore

log = logging.getLogger(__name__)

ATTACH_CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class AttachOptions:
    batch_size: int = 500  # documents per page read, encode and sidecar write; the first page is the detection sample
    max_rejects: int | None = None
    sidecar_kind: str = "auto"
    limits: Limits = field(default_factory=Limits)
    progress: bool = True
    keep_alive: str = DEFAULT_KEEP_ALIVE  # how long the cluster keeps the read's point in time between pages
    force: bool = False  # read from the top even when a checkpoint says otherwise
    write_vectors: bool = False  # also set the vector field of the shop's documents (partial updates)

    def __post_init__(self) -> None:
        check_batch_options(self.batch_size, self.max_rejects)


@dataclass
class AttachCheckpoint:
    """Where an attach stands: see the module docstring. `given` is the user's `--field` map."""

    index: str
    given: dict[str, str]
    field_map: dict[str, Any]
    model: dict[str, Any]
    cursor: dict[str, Any]
    rejects_bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    version: int = ATTACH_CHECKPOINT_VERSION

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(asdict(self), indent=1).encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> AttachCheckpoint | None:
        """The checkpoint at `path`, or None when there is none or it cannot be trusted (then attach starts over)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != ATTACH_CHECKPOINT_VERSION:
                return None
            return cls(**data)
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def matches(self, index: str, given: Mapping[str, str], model: Mapping[str, Any]) -> bool:
        return self.index == index and self.given == dict(given) and self.model == dict(model)


@dataclass
class AttachReport:
    """What a run did. Counts include the run(s) it resumed (`done_before_resume` of them were theirs).

    `removed`: ids the sidecar held that the index does not (or whose document is rejected now).
    `restarted`: the read's cursor could not be followed any more (its point in time had expired on
    an engine whose cursor needs it), so the run read the index from the top again.
    """

    index: str
    sidecar: str
    rejects_file: str
    field_map: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run decided about the index, to tell the user
    vectors_in_index: bool = False
    total: int = 0
    read: int = 0
    written: int = 0
    rejected: int = 0
    removed: int = 0
    resumed: bool = False
    restarted: bool = False
    done_before_resume: int = 0
    sidecar_count: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0
    sidecar_seconds: float = 0.0
    cluster_seconds: float = 0.0
    stopped: bool = False
    exit_code: int = EXIT_OK

    @property
    def items_per_second(self) -> float:
        done = self.read - self.done_before_resume
        return done / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return report_dict(self)

    def summary(self) -> str:
        status = "stopped: too many rejects" if self.stopped else "done"
        return (f"{status}: read {self.read} documents of {self.index}, written {self.written}, "
                f"rejected {self.rejected} in {self.seconds:.1f}s ({self.items_per_second:.0f} items/s); "
                f"the sidecar {self.sidecar} holds {self.sidecar_count} items"
                + (f"; removed {self.removed} the index no longer holds" if self.removed else "")
                + (" (resumed)" if self.resumed else "")
                + (f"; rejects in {self.rejects_file}" if self.rejected else ""))


def attach(
    *,
    backend: SearchBackend,
    index: str,
    encoder: Encoder,
    sidecar_dir: Path,
    rejects_path: Path,
    checkpoint_path: Path,
    given: Mapping[str, str] | None = None,
    options: AttachOptions = AttachOptions(),
    model: Mapping[str, Any] | None = None,
    tell: Callable[[list[str]], None] | None = None,
) -> AttachReport:
    """Read every document of `index`, map it with `given` (+ detection), encode it and write the sidecar.

    `model` identifies the encoder (`checkpoint.model_identity`): a checkpoint of another model is not
    resumed. `tell` is called with lines for the user before anything is written: what `write_vectors`
    does to the index, then one line per item field saying where it is read from (`title <- name (detected)`).
    """
    started = time.perf_counter()
    given = dict(given or {})
    identity = model_identity(encoder, model)
    if options.write_vectors:  # a run that wrote none to the index is not resumed by one that does, nor back
        identity["write_vectors"] = True
    report = AttachReport(index=index, sidecar=str(sidecar_dir), rejects_file=str(rejects_path))
    if not isinstance(backend, DocumentReader):
        raise UsageError(f"the {backend.flavor} backend cannot read the documents of an index")
    if not backend.index_exists(index):
        raise IndexNotFound(f"{backend.url}: no index named {index!r} to attach to")
    resume = None if options.force else AttachCheckpoint.load(checkpoint_path)
    if resume is not None and not resume.matches(index, given, identity):
        log.warning("checkpoint %s is for another index, model or field map; reading from the top", checkpoint_path)
        resume = None
    writer = _vector_writer(backend, index, encoder.dim, report) if options.write_vectors else None
    if report.notes and tell is not None:
        tell(report.notes)
    report.total = backend.count(index)
    store = open_sidecar(sidecar_dir, encoder, options.sidecar_kind)
    run = _Attach(encoder, store, RejectsFile(rejects_path, keep_bytes=resume.rejects_bytes if resume else 0),
                  options, report, writer)
    checkpoint = resume or AttachCheckpoint(index, given, {}, identity, {})
    if resume is not None:
        report.resumed = True
        for key in ("read", "written", "rejected"):
            setattr(report, key, int(resume.counts.get(key, 0)))
        report.done_before_resume = report.read
    fmap = FieldMap.from_dict(checkpoint.field_map) if checkpoint.field_map else None

    def announce(found: FieldMap, *, documents: bool) -> None:
        report.field_map = found.describe()
        if tell is not None:
            tell(report.field_map)
        if documents and found.path("title") is None:
            raise UsageError(f"no title field found in the documents of {index}: name it with "
                             "--field title=PATH (a dotted path into objects, e.g. product.name)")

    bar: Any = None  # made once the field map is said, so that its lines come first
    try:
        if fmap is not None:
            announce(fmap, documents=True)
        after = Cursor.from_dict(checkpoint.cursor) if resume is not None and checkpoint.cursor else None
        for page in backend.iter_documents(index, batch=options.batch_size, after=after,
                                           keep_alive=options.keep_alive):
            if fmap is None:
                fmap = build_field_map(given, [d.source for d in page.documents])
                checkpoint.field_map = fmap.to_dict()
                announce(fmap, documents=True)
                save_field_map(sidecar_dir, fmap)  # the writes followed later map documents the same way
            if bar is None:
                bar = _progress_bar(report.total, report.read, options.progress)
            if page.cursor.restarted and not report.restarted:
                run.start_over()
                bar.reset(total=report.total)
            run.write(page.documents, fmap)
            checkpoint.cursor = page.cursor.to_dict()
            run.save_progress(checkpoint, checkpoint_path,
                              {"read": report.read, "written": report.written, "rejected": report.rejected})
            bar.update(len(page.documents))
            elapsed = time.perf_counter() - started
            bar.set_postfix(items_s=f"{(report.read - report.done_before_resume) / max(elapsed, 1e-9):.0f}",
                            rejected=report.rejected, refresh=False)
            if run.over_limit:
                report.stopped = True
                break
        if fmap is None:  # an empty index
            announce(build_field_map(given, []), documents=False)
        if not report.stopped:
            report.removed += run.remove_gone(set(backend.iter_ids(index)))
        run.finish(checkpoint_path, complete=not report.stopped)
    finally:
        if bar is not None:
            bar.close()
        run.close()
    report.sidecar_count = len(store)
    report.exit_code = exit_code(report)
    report.seconds = time.perf_counter() - started
    return report


class _Attach(BatchRun[AttachReport, AttachOptions]):
    """State of one attach run: the sidecar, the rejects file, counters and timers."""

    def __init__(self, encoder: Encoder, store: SidecarStore, rejects: RejectsFile, options: AttachOptions,
                 report: AttachReport, writer: ClusterWriter | None) -> None:
        super().__init__(encoder, store, rejects, options, report)
        self.writer = writer

    def start_over(self) -> None:
        """The read begins again from the top: what was counted and rejected is counted anew."""
        report = self.report
        report.restarted = True
        report.read = report.written = report.rejected = report.done_before_resume = 0
        path = self.rejects.path
        self.rejects.close()
        self.rejects = RejectsFile(path, keep_bytes=0)

    def write(self, documents: list[Document], fmap: FieldMap) -> None:
        report = self.report
        items: list[dict[str, Any]] = []
        refused: list[str] = []
        for doc in documents:
            report.read += 1
            checked = validate_row(fmap.item(doc.id, doc.source), self.options.limits)
            if checked.item is None:
                reason = checked.reason or "invalid document"
                if reason == "missing title":
                    reason = f"no title after mapping (title <- {fmap.path('title')})"
                self.reject(None, doc.id, reason, json.dumps(doc.source, ensure_ascii=False, default=str))
                refused.append(doc.id)
            else:
                items.append(checked.item)
        t0 = time.perf_counter()
        if items:
            vectors = self.encode(items)
            t1 = time.perf_counter()
            if self.writer is not None:
                items, vectors = self._write_cluster(items, vectors, refused)
                t0, t1 = t1, time.perf_counter()
                report.cluster_seconds += t1 - t0
            if items:
                self.store.upsert([i["id"] for i in items], vectors, items)
            report.written += len(items)
            t0 = t1
        if refused:
            report.removed += self.store.delete(refused)  # put there by an earlier attach, now unusable
        report.sidecar_seconds += time.perf_counter() - t0

    def _write_cluster(self, items: list[dict[str, Any]], vectors: np.ndarray,
                       refused: list[str]) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Set the vectors in the index; returns the items (and vectors) the cluster acknowledged.

        A document refused for good (gone since the read's point in time opened: 404) is rejected
        with the cluster's reason; a refusal for the moment stops the run (`ClusterWriter`), before
        its checkpoint moves.
        """
        assert self.writer is not None
        outcome = self.writer.update([{"id": item["id"], EMBEDDING_FIELD: vectors[n].tolist()}
                                      for n, item in enumerate(items)])
        by_id = {item["id"]: item for item in items}
        for failure in outcome.failed:
            reason = f"cluster refused the vector (HTTP {failure.status}): {failure.reason}"
            self.reject(None, failure.id, reason, json.dumps(by_id[failure.id], ensure_ascii=False))
            refused.append(failure.id)
        keep = acknowledged([item["id"] for item in items], outcome)
        return [items[n] for n in keep], vectors[keep]

    def remove_gone(self, in_index: set[str]) -> int:
        """Delete from the sidecar the ids the index does not hold; returns how many."""
        gone = [i for i in self.store.index.ids() if i not in in_index]
        return self.store.delete(gone) if gone else 0


def _vector_writer(backend: SearchBackend, index: str, dims: int, report: AttachReport) -> ClusterWriter:
    """Prepare the index for the vectors (as ingest does for a shop's index) and the writer of their updates.

    Read before anything is written: a vector field mapped otherwise, or an index that cannot take
    one, is a `UsageError` and nothing is written.
    """
    target = plan_target(backend, index, dims=dims, embed_in_cluster=True, replace_documents=False)
    if not target.vectors:
        raise UsageError(f"--write-vectors: {'; '.join(target.notes) or f'{index} cannot take the vectors'}; "
                         "nothing was written (attach without --write-vectors builds the sidecar alone)")
    report.notes = [note.replace("use --no-embedding-field", "attach without --write-vectors")
                    for note in target.notes]
    if target.add_vector_mapping:
        backend.add_vector_mapping(target.write_index, IndexSpec(index, dims=dims))
    report.vectors_in_index = True
    return ClusterWriter(backend, target.write_index)


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=min(initial, total), unit="docs", desc="attach", disable=not enabled,
                mininterval=0.5, dynamic_ncols=True, leave=False)
