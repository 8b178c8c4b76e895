"""`dsr train retrieval` as a library call: read a catalog and search logs (and optionally human
judgments), build triples, train the towers with a held-out validation share of queries, save."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsr.catalog import Item, item_text, read_catalog_items
from dsr.encoders.backbone_tuning import BackboneTuneConfig, BackboneTuneResult, tune_backbone
from dsr.encoders.model import TwoTowerModel
from dsr.encoders.trainer import TrainConfig, TrainResult, train_two_tower
from dsr.errors import InputError
from dsr.logs.judged import judged_triples, read_graded
from dsr.logs.load import load_logs
from dsr.logs.records import LoadReport, Session
from dsr.logs.triples import Triple, TripleConfig, build_triples, positive_weights


@dataclass(frozen=True)
class RetrievalJob:
    catalog: Path
    out: Path
    logs: tuple[Path, ...] = ()
    judgments: Path | None = None
    log_format: str = "auto"
    applications: tuple[str, ...] | None = None
    max_errors: int | None = 100
    negatives: tuple[str, ...] = ("hard", "random")
    backbone: str | None = None
    personalise: bool = False
    dim: int | None = None
    hidden: tuple[int, ...] = (256, 128)
    text_buckets: int = 1 << 16
    validation_share: float = 0.1
    device: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    tune_backbone: BackboneTuneConfig | None = None  # fine-tune the backbone itself first (needs a backbone)
    vector_cache: Path | None = None  # leave the item tower's catalog vectors here (dsr.encoders.embed_cache)
    heads_min_s: float | None = None  # the heads' least time from their start, past `train`'s deadline if need be


@dataclass
class JobReport:
    catalog_items: int = 0
    catalog_rejected: int = 0
    logs: LoadReport | None = None
    judgments: LoadReport | None = None
    triples: int = 0
    validation_queries: int = 0
    result: TrainResult | None = None
    backbone: BackboneTuneResult | None = None




def _is_validation(query: str, share: float) -> bool:
    return int(hashlib.sha1(query.lower().encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def run_retrieval_job(job: RetrievalJob, log: Callable[[str], None] | None = None) -> tuple[TwoTowerModel, JobReport]:
    say = log or (lambda _m: None)
    if job.tune_backbone is not None and job.backbone is None:
        raise InputError("tuning the backbone needs a backbone (--backbone minilm)")
    report = JobReport()
    catalog, report.catalog_rejected = read_catalog_items(job.catalog)
    report.catalog_items = len(catalog)
    ids = [it["id"] for it in catalog]
    known = set(ids)
    sessions: list[Session] = []
    if job.logs:
        sessions, report.logs = load_logs(list(job.logs), fmt=job.log_format, known_items=known,
                                          applications=set(job.applications) if job.applications else None,
                                          max_errors=job.max_errors)
        say(f"logs: {report.logs.summary()}")
    graded: dict[str, dict[str, float]] = {}
    if job.judgments:
        graded, report.judgments = read_graded(job.judgments, known_items=known, max_errors=job.max_errors)
        say(f"judgments: {report.judgments.summary()}")
    if not sessions and not graded:
        raise InputError("no training data: give --logs and/or --judgments")
    val_q = {s.query for s in sessions} | set(graded)
    val_q = {q for q in val_q if _is_validation(q, job.validation_share)}
    validation: dict[str, dict[str, int]] = {}
    for s in sessions:
        if s.query in val_q:
            for item in positive_weights(s, TripleConfig()):
                validation.setdefault(s.query, {})[item] = 1
    for q, grades in graded.items():
        if q in val_q:
            for item, g in grades.items():
                if g >= 2.5:
                    validation.setdefault(q, {})[item] = 1
    train_sessions = [s for s in sessions if s.query not in validation]
    seed = job.train.schedule.seed
    triples: list[Triple] = []
    if train_sessions and any(s.clicks or s.orders or s.add_to_carts for s in train_sessions):
        triples += build_triples(train_sessions, ids, TripleConfig(negatives=job.negatives, seed=seed))
    elif sessions:
        say("the logs hold no clicks, carts or orders outside the validation queries")
    train_graded = {q: g for q, g in graded.items() if q not in validation}
    if train_graded:
        triples += judged_triples(train_graded, ids, seed=seed)
    if not triples:
        raise InputError("no training triples: the logs hold no clicks/orders and no judgment is well graded")
    report.triples, report.validation_queries = len(triples), len(validation)
    say(f"{len(triples)} training triples, {len(validation)} validation queries")
    tuned = None
    if job.tune_backbone is not None:
        say(f"tuning the {job.backbone} backbone on {len(triples)} triples")
        tuned, report.backbone = tune_backbone(triples, {str(it["id"]): item_text(it) for it in catalog},
                                               job.tune_backbone, device=job.device, log=say)
    model = TwoTowerModel.build(catalog, backbone=job.backbone, use_user=job.personalise, dim=job.dim,
                                hidden=job.hidden, device=job.device, text_buckets=job.text_buckets,
                                backbone_tuned=tuned is not None)
    if tuned is not None:
        model.attach_tuned_backbone(tuned)
    item_backbone = None
    if job.backbone is not None:
        item_backbone = _encode_catalog(model.backbone_encoder(), catalog, progress=job.train.schedule.progress)
    train = job.train
    if job.heads_min_s is not None and train.schedule.deadline is not None:
        # a slow catalog encoding (a loaded machine) must not leave the heads a single epoch
        train = dataclasses.replace(train, schedule=train.schedule.replace(
            deadline=max(train.schedule.deadline, time.monotonic() + job.heads_min_s)))
    report.result = train_two_tower(model, triples, catalog, train, item_backbone=item_backbone,
                                    validation=validation or None,
                                    checkpoint_dir=job.out.with_name(f"{job.out.name}.checkpoints"), log=say)
    info: dict[str, Any] = {
        "catalog": str(job.catalog), "logs": [str(p) for p in job.logs],
        "judgments": str(job.judgments) if job.judgments else None, "triples": len(triples),
        "best_epoch": report.result.best_epoch,
        "val_recall": [e.val_recall for e in report.result.epochs],
        "train": job.train.to_config(),
    }
    if report.backbone is not None and job.tune_backbone is not None:
        info["backbone_tuning"] = {**job.tune_backbone.to_config(), "steps": report.backbone.steps,
                                   "seconds": round(report.backbone.seconds, 1),
                                   "loss": [round(report.backbone.first_loss, 4), round(report.backbone.last_loss, 4)]}
    model.save(job.out, info=info)
    if job.vector_cache is not None:
        _cache_item_vectors(model, catalog, item_backbone, job.out, job.vector_cache)
    return model, report


def _encode_catalog(encoder: Any, catalog: Sequence[Item], *, progress: bool, chunk: int = 512) -> np.ndarray:
    """The backbone's vectors of every item, chunk by chunk behind a progress bar (minutes for 50k items)."""
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(catalog), desc="encoding the catalog", unit="item", disable=not progress) as bar:
        for start in range(0, len(catalog), chunk):
            parts.append(np.asarray(encoder.encode_items(catalog[start:start + chunk]), dtype=np.float32))
            bar.update(len(parts[-1]))
    return np.concatenate(parts)


class _Precomputed:
    """Already computed item vectors behind the encoder interface the embedding cache fills from."""

    def __init__(self, catalog: Sequence[Item], vectors: np.ndarray) -> None:
        self.dim = int(vectors.shape[1])
        self.row = {str(it["id"]): i for i, it in enumerate(catalog)}
        self.vectors = vectors

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        return self.vectors[[self.row[str(it["id"])] for it in items]]

    def encode_queries(self, texts: Sequence[str], users: Sequence[Any] | None = None) -> np.ndarray:
        raise NotImplementedError("precomputed item vectors have no query side")


def _cache_item_vectors(model: TwoTowerModel, catalog: Sequence[Item], item_backbone: np.ndarray | None,
                        model_dir: Path, cache_dir: Path) -> None:
    """Leave the saved model's item vectors where the ranker's first stage and `dsr eval` look for them,
    from the backbone vectors training already computed, so the catalog is not encoded again."""
    from dsr.encoders.embed_cache import item_embeddings, model_dir_key
    from dsr.eval.dataset import catalog_fingerprint

    vectors = model.encode_items(catalog, backbone=item_backbone)
    item_embeddings(_Precomputed(catalog, vectors), catalog, model_key=f"dsr-{model_dir_key(model_dir)}",
                    catalog_key=catalog_fingerprint(catalog), cache_dir=cache_dir, progress=False)


def encode_catalog(model_dir: Path, catalog: Path, out: Path, *, batch_size: int = 4096,
                   device: str | None = None, progress: bool = True) -> int:
    """Write `{out}.npy`-style item embeddings: `out` (a .npy file) plus `out` with `.ids.json`."""
    import json

    import numpy as np
    from tqdm.auto import tqdm

    model = TwoTowerModel.load(model_dir, device=device)
    items, _ = read_catalog_items(catalog)
    parts = []
    for s in tqdm(range(0, len(items), batch_size), desc="encoding items", unit="batch", disable=not progress):
        parts.append(model.encode_items(items[s : s + batch_size]))
    vecs = np.concatenate(parts) if parts else np.zeros((0, model.dim), np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vecs)
    out.with_suffix(".ids.json").write_text(json.dumps([it["id"] for it in items]), encoding="utf-8")
    return len(items)


def parse_csv_option(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def parse_hidden(value: str) -> Sequence[int]:
    try:
        out = tuple(int(v) for v in parse_csv_option(value))
    except ValueError:
        raise InputError(f"--hidden must be comma-separated layer sizes, got {value!r}") from None
    if not out or min(out) < 1:
        raise InputError(f"--hidden must be comma-separated positive layer sizes, got {value!r}")
    return out
