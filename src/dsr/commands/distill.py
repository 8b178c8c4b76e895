"""`dsr distill`: label generated query-item pairs with the teacher, then train the served student."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from dsr.reranker.distill import CandidateSource, ScoredPair, StudentTrainConfig
    from dsr.reranker.groups import RankGroup


@click.group("distill")
def distill() -> None:
    """Knowledge distillation: cross-encoder teacher -> augmented pairs -> Siamese student."""


@distill.command("augment")
@click.option("--teacher", "teacher_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Teacher model directory (dsr train teacher).")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (jsonl, csv or parquet).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the scored shards and the checkpoint; re-running resumes, and more "
                   "queries after the earlier ones score only the new ones.")
@click.option("--queries", "queries_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Queries to augment, one per line (e.g. logged queries).")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Train judgments: their queries are augmented and their judged items scored too.")
@click.option("--title-queries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also augment this many queries written from catalog titles (when the logs are small).")
@click.option("--index", "index_name", default=None,
              help="Index to take BM25 candidates from (the cluster of --engine, or the embedded backend).")
@click.option("--dsr-model", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Two-tower model for DSR neighbour candidates (with --sidecar).")
@click.option("--sidecar", default=None, help="Vector sidecar directory or URL for DSR neighbours.")
@click.option("--k", type=int, default=30, show_default=True, help="Candidates per query from each source.")
@click.option("--max-new-per-query", type=int, default=None, help="Cap on unjudged candidates per query.")
@click.option("--no-judged", is_flag=True, default=False, help="Do not score the judged items themselves.")
@click.option("--shard-queries", type=int, default=256, show_default=True, help="Queries per shard (resume unit).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Teacher batch size.")
@click.option("--device", default=None, help="torch device (default: the GPU when present, else the CPU).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def augment_command(ctx: click.Context, teacher_dir: Path, catalog: Path, out: Path, queries_file: Path | None,
                    judgments: Path | None, title_queries: int, index_name: str | None, dsr_model: Path | None,
                    sidecar: str | None, k: int, max_new_per_query: int | None, no_judged: bool, shard_queries: int,
                    batch_size: int, device: str | None, progress: bool) -> None:
    """Score train queries x BM25 / DSR candidates with the teacher (batched, resumable)."""
    from dsr.errors import UsageError
    from dsr.jobs.distill import read_catalog_map, read_graded, read_queries
    from dsr.reranker.distill import (
        AugmentConfig,
        BackendCandidates,
        CrossEncoderTeacher,
        NeighbourCandidates,
        augment,
        queries_from_titles,
    )

    if queries_file is None and judgments is None and not title_queries:
        raise UsageError("give --queries, --judgments and/or --title-queries: the queries to augment")
    if (dsr_model is None) != (sidecar is None):
        raise UsageError("DSR neighbours need both --dsr-model and --sidecar")
    items, rejected = read_catalog_map(catalog)
    if rejected:
        _err(f"{catalog}: {rejected} catalog rows rejected (no id or title, duplicate id, unreadable)")
    judged = read_graded(judgments, _err) if judgments else {}
    queries = [*(read_queries(queries_file) if queries_file else []), *judged]
    if title_queries:
        written = queries_from_titles(list(items.values()), title_queries, exclude=queries)
        _err(f"{len(written)} queries written from titles")
        queries += written
    sources: list[CandidateSource] = []
    if index_name:
        from dsr.backends.factory import connect

        sources.append(BackendCandidates(connect(ctx.obj), index_name))
    if dsr_model is not None and sidecar is not None:
        from dsr.encoders.resolve import resolve_encoder
        from dsr.sidecar import open_vector_index

        sources.append(NeighbourCandidates(resolve_encoder(dsr_model, device=device), open_vector_index(sidecar)))
    teacher = CrossEncoderTeacher.load(teacher_dir, device=device)
    cfg = AugmentConfig(k=k, max_new_per_query=max_new_per_query, include_judged=not no_judged,
                        shard_queries=shard_queries, batch_size=batch_size)
    report = augment(queries, teacher, items, out, sources=sources, judged=judged, config=cfg, progress=progress)
    click.echo(f"augmented {out}: {report.summary()}")


@distill.command("train")
@click.option("--scored", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder written by `dsr distill augment`.")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (jsonl, csv or parquet).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Ranker model directory to write (loads and serves as the normal Siamese ranker).")
@click.option("--validation", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Graded judgments of held-out queries (augmented too): they leave the training data, and the "
                   "epoch that ranks them best for people is kept (early stopping).")
@click.option("--patience", type=click.IntRange(min=1), default=3, show_default=True,
              help="Stop after this many epochs without a better validation NDCG@10 (without --validation: "
                   "without a lower margin error).")
@click.option("--max-pairs-per-query", type=int, default=200, show_default=True)
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--dim", type=int, default=32, show_default=True, help="Hashed text embedding size.")
@click.option("--hidden", default="256,128,64", show_default=True, help="The three ReLU layer sizes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def train_command(scored: Path, catalog: Path, out: Path, validation: Path | None, patience: int,
                  max_pairs_per_query: int, epochs: int, batch_size: int, lr: float, dim: int, hidden: str, seed: int,
                  progress: bool) -> None:
    """Train the Siamese student to match the teacher's margins (margin-MSE)."""
    from dsr.errors import UsageError
    from dsr.jobs.distill import read_catalog_map, read_graded
    from dsr.reranker.distill import (
        hold_out_validation,
        margin_groups,
        read_scored,
        train_student,
    )
    from dsr.reranker.features import FeatureConfig, FeatureExtractor

    cfg = student_config(epochs=epochs, batch_size=batch_size, lr=lr, dim=dim, hidden=hidden, patience=patience,
                         seed=seed, progress=progress)
    items, rejected = read_catalog_map(catalog)
    if rejected:
        _err(f"{catalog}: {rejected} catalog rows rejected")
    rows: Iterable[ScoredPair] = read_scored(scored)
    val_groups: list[RankGroup] = []
    if validation is not None:
        val_groups, rows, val_skipped = hold_out_validation(rows, read_graded(validation, _err), items)
        for why, n in sorted(val_skipped.items()):
            _err(f"validation: skipped {n} ({why})")
        if not val_groups:
            raise UsageError(f"no query of {validation} has augmented candidates with a graded pair; augment "
                             "those queries too (dsr distill augment --judgments)")
        _err(f"validation: {len(val_groups)} held-out queries")
    groups, skipped = margin_groups(rows, items, max_pairs_per_query=max_pairs_per_query, seed=seed)
    for why, n in sorted(skipped.items()):
        _err(f"skipped {n} ({why})")
    ranker, summary = train_student(groups, FeatureExtractor(FeatureConfig(), items), cfg, val_groups=val_groups)
    ranker.save(out, extra={"trained_by": "distill", "teacher_scored": str(scored)})
    kept = (f", kept epoch {summary.best_epoch} (validation NDCG@10 {summary.best_val['ndcg@10']:.4f})"
            if val_groups else "")
    click.echo(f"saved {out} ({summary.pairs} pairs over {summary.groups} queries, {summary.epochs_run} epochs{kept}, "
               f"final margin MSE {summary.history[-1]['train_loss']:.4f})")


def student_config(*, epochs: int, batch_size: int, lr: float, dim: int, hidden: str, patience: int, seed: int,
                   progress: bool) -> StudentTrainConfig:
    """The training options on the student's schedule; `hidden` is the three comma-separated layer sizes."""
    from dsr.errors import UsageError
    from dsr.reranker.distill import STUDENT_SCHEDULE, StudentTrainConfig

    try:
        sizes = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise UsageError(f"--hidden needs three positive sizes, e.g. 256,128,64 (got {hidden!r})")
    schedule = STUDENT_SCHEDULE.replace(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                                        progress=progress)
    return StudentTrainConfig(schedule=schedule, dim=dim, hidden=(sizes[0], sizes[1], sizes[2]))


def _err(msg: str) -> None:
    click.echo(msg, err=True)
