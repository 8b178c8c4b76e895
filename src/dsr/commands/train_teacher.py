"""`dsr train teacher`: fine-tune the cross-encoder teacher used for distillation (offline MiniLM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from dsr.reranker.distill import TeacherTrainConfig


@click.command("teacher")
@click.option("--judgments", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Graded judgments: query, item_id, grade (tsv/csv/json/jsonl).")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (jsonl, csv or parquet) the judgments refer to.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model directory to write (config.json + model.safetensors + tokenizer files).")
@click.option("--classes", type=int, default=None,
              help="Number of grade classes (default: one per integer step between the lowest and highest grade).")
@click.option("--negatives-per-query", type=int, default=1, show_default=True,
              help="Random unjudged catalog items per query, labelled with the lowest grade.")
@click.option("--max-length", type=int, default=48, show_default=True, help="Tokens of query + item text.")
@click.option("--max-pairs", type=int, default=4000, show_default=True,
              help="Train on a random subsample of this many pairs (0: all).")
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=4e-5, show_default=True, help="Learning rate of the transformer.")
@click.option("--freeze-layers", type=int, default=0, show_default=True,
              help="Freeze the embeddings and this many bottom layers (faster on a CPU).")
@click.option("--device", default=None, help="torch device (default: the GPU when present, else the CPU).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def teacher(judgments: Path, catalog: Path, out: Path, classes: int | None, negatives_per_query: int,
            max_length: int, max_pairs: int, epochs: int, batch_size: int, lr: float, freeze_layers: int,
            device: str | None, seed: int, progress: bool) -> None:
    """Fine-tune a cross-encoder teacher (query and item in one input) on graded judgments."""
    from dsr.jobs.distill import read_catalog_map, read_graded, teacher_examples
    from dsr.reranker.distill import GradeScale, train_teacher

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    items, rejected = read_catalog_map(catalog)
    if rejected:
        log(f"{catalog}: {rejected} catalog rows rejected (no id or title, duplicate id, unreadable)")
    graded = read_graded(judgments, log)
    scale = GradeScale.fit([g for grades in graded.values() for g in grades.values()], classes=classes)
    examples, report = teacher_examples(graded, items, scale, negatives_per_query=negatives_per_query, seed=seed)
    for why, n in sorted(report.skipped.items()):
        log(f"skipped {n} judged pairs ({why})")
    cfg = teacher_config(max_length=max_length, max_pairs=max_pairs, epochs=epochs, batch_size=batch_size, lr=lr,
                         freeze_layers=freeze_layers, device=device, seed=seed, progress=progress)
    model, summary = train_teacher(examples, scale, cfg)
    model.save(out)
    click.echo(f"saved {out} ({summary.pairs} pairs incl. {report.negatives} negatives, {summary.steps} steps, "
               f"loss {summary.first_loss:.3f} -> {summary.last_loss:.3f}; grades {scale.low:g}..{scale.high:g} "
               f"in {scale.classes} classes)")


def teacher_config(*, max_length: int, max_pairs: int, epochs: int, batch_size: int, lr: float, freeze_layers: int,
                   device: str | None, seed: int, progress: bool) -> TeacherTrainConfig:
    """The training options on the teacher's schedule (`--max-pairs 0`: every pair)."""
    from dsr.reranker.distill import TEACHER_SCHEDULE, TeacherTrainConfig

    schedule = TEACHER_SCHEDULE.replace(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    return TeacherTrainConfig(schedule=schedule, max_length=max_length, max_pairs=max_pairs or None,
                              freeze_layers=freeze_layers, device=device)
