"""Augmented training data: many unlabelled (query, item) pairs, labelled by the teacher.

Human judgments cover a few items per query; the student can learn from far more if the teacher
labels the rest. For each query the candidate sources (BM25 from the search backend, DSR neighbours
from the vector sidecar, anything else that fits `CandidateSource`) propose items beyond the judged
ones; the teacher scores every new (query, item) once, in batches, on the GPU when there is one.

The work is split into shards of queries. Each finished shard is written atomically
(`shard-00000.jsonl`) and recorded in `checkpoint.json`, so an interrupted run resumes where it
stopped, and a run given more queries after the earlier ones scores only the new ones. A checkpoint
made with another teacher, other settings or other leading queries is refused rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dsr.catalog import Item, item_text
from dsr.errors import InputError, UsageError
from dsr.reranker.distill.teacher import CrossEncoderTeacher

CHECKPOINT = "checkpoint.json"
SHARD_PATTERN = "shard-{:05d}.jsonl"
FORMAT_VERSION = 1


@runtime_checkable
class CandidateSource(Protocol):
    """Proposes `(item id, first-stage score)` for each query, best first.

    `name` is also the key the score is kept under ("bm25", "dsr"), which the student reads back as
    the candidate's first-stage feature, as the serving path would provide it.
    """

    name: str

    def candidates(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]: ...


class BackendCandidates:
    """BM25 top-k from a `SearchBackend` index (the cluster's own term match, or the embedded one)."""

    name = "bm25"

    def __init__(self, backend, index: str) -> None:  # backend: dsr.backends.base.SearchBackend
        self.backend = backend
        self.index = index

    def candidates(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        return [[(h.id, float(h.score)) for h in self.backend.term_search(self.index, q, size=k)]
                for q in queries]


class NeighbourCandidates:
    """DSR neighbours: the query tower's embedding searched in a `VectorIndex`."""

    name = "dsr"

    def __init__(self, encoder, index) -> None:  # dsr.encoders.base.Encoder, dsr.sidecar.base.VectorIndex
        self.encoder = encoder
        self.index = index

    def candidates(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        if not queries:
            return []
        scores, ids = self.index.search(self.encoder.encode_queries(list(queries)), k)
        return [[(i, float(s)) for i, s in zip(row, srow, strict=False) if i]
                for row, srow in zip(ids, scores, strict=True)]


@dataclass(frozen=True)
class AugmentConfig:
    k: int = 30  # candidates asked from each source per query
    max_new_per_query: int | None = None  # cap on unjudged candidates kept per query
    include_judged: bool = True  # the teacher also (re)labels the judged items, so margins are comparable
    shard_queries: int = 256
    batch_size: int = 64


@dataclass(frozen=True)
class ScoredPair:
    """One teacher-labelled (query, item).

    `score` is the teacher's expected grade, `source` the first source that proposed the item
    ("judged" for a human-labelled one), `first_stage` the scores each source gave it (e.g.
    `{"bm25": 7.2}`) and `rank` its position in the query's candidate list.
    """

    query: str
    item_id: str
    score: float
    source: str
    probs: tuple[float, ...] = ()
    first_stage: Mapping[str, float] = field(default_factory=dict)
    rank: int = 0


@dataclass
class AugmentReport:
    queries: int = 0
    shards: int = 0
    shards_resumed: int = 0  # finished in an earlier run, not redone
    pairs: int = 0  # pairs scored in this run
    by_source: dict[str, int] = field(default_factory=dict)
    unknown_ids: int = 0  # candidates whose id the catalog lacks (skipped)

    def summary(self) -> str:
        src = ", ".join(f"{n} from {s}" for s, n in sorted(self.by_source.items()))
        parts = [f"{self.queries} queries", f"{self.shards} shards ({self.shards_resumed} resumed)",
                 f"{self.pairs} pairs scored" + (f" ({src})" if src else "")]
        if self.unknown_ids:
            parts.append(f"{self.unknown_ids} candidate ids not in the catalog skipped")
        return ", ".join(parts)


def _fingerprint(queries: Sequence[str], teacher_id: str, sources: Sequence[str], cfg: AugmentConfig,
                 judged: Mapping[str, Mapping[str, float]] | None) -> dict[str, object]:
    h = hashlib.sha1()
    for q in queries:
        h.update(q.encode("utf-8") + b"\x1e")
    if judged:
        for q in queries:
            for i in sorted(judged.get(q, {})):
                h.update(i.encode("utf-8") + b"\x1f")
    return {"format_version": FORMAT_VERSION, "teacher": teacher_id, "sources": list(sources),
            "queries": len(queries), "queries_sha1": h.hexdigest(),
            "config": {k: v for k, v in asdict(cfg).items() if k != "batch_size"}}


def _reusable_shards(ckpt: Mapping[str, Any], qs: Sequence[str],
                     fingerprint: Callable[[Sequence[str]], dict[str, object]], shard_queries: int) -> int | None:
    """How many finished shards of an earlier run this run keeps; None when nothing of it fits.

    The same queries resume where the run stopped. Queries appended to the earlier list (a log that
    grew, a bigger augmentation scale) keep every full shard of the earlier ones and score only the
    rest, so a larger augmentation never pays again for the teacher's work on a smaller one.
    """
    old = ckpt.get("fingerprint")
    done = int(ckpt.get("shards_done", 0))
    if old == fingerprint(qs):
        return done
    if not isinstance(old, Mapping):
        return None
    n_old = int(old.get("queries", 0) or 0)
    if not 0 < n_old < len(qs) or fingerprint(qs[:n_old]) != old:
        return None
    return min(done, n_old // shard_queries)  # a partial last shard is redone with the new queries


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def augment(
    queries: Sequence[str],
    teacher: CrossEncoderTeacher,
    catalog: Mapping[str, Item],
    out_dir: Path | str,
    *,
    sources: Sequence[CandidateSource] = (),
    judged: Mapping[str, Mapping[str, float]] | None = None,
    config: AugmentConfig | None = None,
    progress: bool = False,
) -> AugmentReport:
    """Score every query's candidates with the teacher into resumable shards under `out_dir`.

    `judged` (query -> item id -> grade) marks items that already have a human label; they are
    scored too when `include_judged` (the student then trains on one consistent scale), with source
    "judged". Duplicates across sources are scored once, credited to the first source.
    """
    cfg = config or AugmentConfig()
    qs = list(dict.fromkeys(q for q in queries if q and q.strip()))
    if not qs:
        raise UsageError("no queries to augment")
    if not sources and not (judged and cfg.include_judged):
        raise UsageError("no candidate source: give a BM25 backend/index or DSR neighbours")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in sources]

    def fingerprint(queries: Sequence[str]) -> dict[str, object]:
        return _fingerprint(queries, teacher.model_id, names, cfg, judged)

    fp = fingerprint(qs)
    ckpt_path = out / CHECKPOINT
    done = 0
    if ckpt_path.exists():
        try:
            ckpt = json.loads(ckpt_path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{ckpt_path}: unreadable checkpoint ({e.msg}); "
                             "remove the folder to start over") from None
        reusable = _reusable_shards(ckpt, qs, fingerprint, cfg.shard_queries)
        if reusable is None:
            raise UsageError(f"{out} holds augmented data made with another teacher, queries or settings; "
                             "use an empty folder (or remove it) to start over")
        done = reusable
    n_shards = (len(qs) + cfg.shard_queries - 1) // cfg.shard_queries
    report = AugmentReport(queries=len(qs), shards=n_shards, shards_resumed=min(done, n_shards))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(qs), initial=min(done * cfg.shard_queries, len(qs)), desc="augment",
                   unit="query")
    unknown: set[tuple[str, str]] = set()
    for shard in range(done, n_shards):
        chunk = qs[shard * cfg.shard_queries:(shard + 1) * cfg.shard_queries]
        rows = _candidate_rows(chunk, sources, judged, catalog, cfg, unknown)
        texts = [item_text(catalog[r.item_id]) for r in rows]
        probs = teacher.predict_proba([r.query for r in rows], texts, batch_size=cfg.batch_size) if rows \
            else np.zeros((0, teacher.scale.classes), np.float32)
        scores = teacher.scale.expected(probs)
        lines = [json.dumps({"query": r.query, "item_id": r.item_id, "score": round(float(s), 6),
                             "source": r.source, "rank": r.rank, "first_stage": r.first_stage,
                             "probs": [round(float(p), 6) for p in pr]}, ensure_ascii=False)
                 for r, s, pr in zip(rows, scores, probs, strict=True)]
        _atomic_write(out / SHARD_PATTERN.format(shard), "".join(line + "\n" for line in lines))
        report.pairs += len(rows)
        for r in rows:
            report.by_source[r.source] = report.by_source.get(r.source, 0) + 1
        _atomic_write(ckpt_path, json.dumps({"fingerprint": fp, "shards_done": shard + 1,
                                             "shards_total": n_shards}, indent=2) + "\n")
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    report.unknown_ids = len(unknown)
    return report


def _candidate_rows(
    chunk: Sequence[str],
    sources: Sequence[CandidateSource],
    judged: Mapping[str, Mapping[str, float]] | None,
    catalog: Mapping[str, Item],
    cfg: AugmentConfig,
    unknown: set[tuple[str, str]],
) -> list[ScoredPair]:
    """Each query's candidates in first-stage order (unscored): proposals, then judged ones they missed."""
    proposals = [src.candidates(chunk, cfg.k) for src in sources]
    rows: list[ScoredPair] = []
    for qi, q in enumerate(chunk):
        judged_q = (judged or {}).get(q, {}) if cfg.include_judged else {}
        first: dict[str, dict[str, float]] = {}
        origin: dict[str, str] = {}
        new = 0
        for src, per_query in zip(sources, proposals, strict=True):
            for item_id, score in per_query[qi]:
                if item_id not in catalog:
                    unknown.add((q, item_id))
                    continue
                if item_id not in origin:
                    if item_id not in judged_q:
                        if cfg.max_new_per_query is not None and new >= cfg.max_new_per_query:
                            continue
                        new += 1
                    origin[item_id] = "judged" if item_id in judged_q else src.name
                first.setdefault(item_id, {})[src.name] = float(score)
        for item_id in judged_q:
            if item_id not in catalog:
                unknown.add((q, item_id))
            elif item_id not in origin:
                origin[item_id] = "judged"
        for rank, item_id in enumerate(origin):
            rows.append(ScoredPair(q, item_id, 0.0, origin[item_id], (), first.get(item_id, {}), rank))
    return rows


def read_scored(out_dir: Path | str, *, complete: bool = True) -> Iterator[ScoredPair]:
    """The scored pairs of every finished shard, in shard order.

    With `complete` (the default) a run that has not finished is refused, so a student is never
    trained on part of the data by accident.
    """
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    if not ckpt_path.exists():
        raise UsageError(f"{out}: no augmented data here (no {CHECKPOINT}); run `dsr distill augment` first")
    ckpt = json.loads(ckpt_path.read_text())
    done, total = int(ckpt.get("shards_done", 0)), int(ckpt.get("shards_total", 0))
    if complete and done < total:
        raise UsageError(f"{out}: augmentation stopped after {done} of {total} shards; "
                         "run it again to finish")
    for shard in range(done):
        path = out / SHARD_PATTERN.format(shard)
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    rec = json.loads(line)
                    yield ScoredPair(rec["query"], rec["item_id"], float(rec["score"]), rec.get("source", ""),
                                     tuple(rec.get("probs", ())), dict(rec.get("first_stage") or {}),
                                     int(rec.get("rank", 0)))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise InputError(f"{path}:{n}: corrupt scored pair ({e})") from None
