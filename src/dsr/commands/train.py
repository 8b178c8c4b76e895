"""`dsr train`: a group of training commands (retrieval towers here; ranker and teacher join it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from dsr.encoders.backbone_tuning import BackboneTuneConfig
    from dsr.encoders.trainer import TrainConfig


@click.group("train")
def train() -> None:
    """Train dsr's models from search logs and judgments."""


@train.command("retrieval")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (jsonl, csv or parquet) the logs refer to.")
@click.option("--logs", "logs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Search log file(s): OpenSearch UBI (ndjson or bulk ndjson) or the simple jsonl sessions. "
                   "Repeatable.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Optional human judgments (tsv: query, item_id, grade 1-3): well graded pairs become "
                   "positives, poorly graded ones hard negatives.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model directory to write (config.json + model.safetensors).")
@click.option("--format", "log_format", type=click.Choice(["auto", "ubi", "jsonl"]), default="auto",
              show_default=True, help="Log format.")
@click.option("--application", "applications", multiple=True,
              help="Keep only UBI events of this application (repeatable); others are skipped and counted.")
@click.option("--max-errors", type=int, default=100, show_default=True,
              help="Stop when more log lines than this are malformed (they are always reported).")
@click.option("--negatives", default="hard,random", show_default=True,
              help="Negative kinds, comma-separated: hard, random, in_batch.")
@click.option("--in-batch/--no-in-batch", default=True, show_default=True,
              help="Also use the other positives of a batch as negatives.")
@click.option("--loss", type=click.Choice(["hinge", "softmax"]), default="hinge", show_default=True)
@click.option("--margin", type=float, default=0.3, show_default=True, help="Hinge margin δ.")
@click.option("--backbone", type=click.Choice(["none", "minilm"]), default="none", show_default=True,
              help="Frozen sentence-transformers backbone under trainable tower heads (offline MiniLM).")
@click.option("--tune-backbone/--no-tune-backbone", default=False, show_default=True,
              help="Fine-tune the backbone's own weights on the triples first (in-batch softmax), then train "
                   "the heads on it; the tuned backbone is saved inside the model directory.")
@click.option("--backbone-epochs", type=float, default=1.0, show_default=True,
              help="Passes over the triples when tuning the backbone (fractions allowed).")
@click.option("--backbone-lr", type=float, default=5e-5, show_default=True)
@click.option("--backbone-batch-size", type=int, default=64, show_default=True)
@click.option("--personalise/--no-personalise", default=False, show_default=True,
              help="Add user features (segment, recent clicks) to the query tower (DPSR).")
@click.option("--dim", type=int, default=None, help="Embedding dimension (default 64; 384 with --backbone).")
@click.option("--hidden", default="256,128", show_default=True, help="Hidden ReLU layer sizes.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--validation-share", type=float, default=0.1, show_default=True,
              help="Share of queries held out to report validation recall@100 each epoch.")
@click.option("--device", default=None, help="torch device (default: the GPU when present, else the CPU).")
@click.option("--threads", type=int, default=1, show_default=True,
              help="CPU threads for torch (0: torch's default; more only help on an idle machine).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def retrieval(catalog: Path, logs: tuple[Path, ...], judgments: Path | None, out: Path, log_format: str,
              applications: tuple[str, ...], max_errors: int, negatives: str, in_batch: bool, loss: str,
              margin: float, backbone: str, tune_backbone: bool, backbone_epochs: float, backbone_lr: float,
              backbone_batch_size: int, personalise: bool, dim: int | None, hidden: str, epochs: int,
              batch_size: int, lr: float, seed: int, validation_share: float, device: str | None,
              threads: int, progress: bool) -> None:
    """Train the DSR query and item towers from search logs (and judgments)."""
    from dsr.jobs.train_retrieval import RetrievalJob, parse_csv_option, parse_hidden, run_retrieval_job
    from dsr.logs.triples import TripleConfig

    kinds = parse_csv_option(negatives)
    TripleConfig(negatives=kinds)  # validates the kinds before any data is read
    job = RetrievalJob(
        catalog=catalog, out=out, logs=logs, judgments=judgments, log_format=log_format,
        applications=applications or None, max_errors=max_errors, negatives=kinds,
        backbone=None if backbone == "none" else backbone, personalise=personalise, dim=dim,
        hidden=tuple(parse_hidden(hidden)), validation_share=validation_share, device=device,
        train=two_tower_config(epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, margin=margin,
                               in_batch=in_batch, seed=seed, threads=threads, progress=progress),
        tune_backbone=backbone_config(epochs=backbone_epochs, lr=backbone_lr, batch_size=backbone_batch_size,
                                      seed=seed, threads=threads, progress=progress) if tune_backbone else None,
    )
    _, report = run_retrieval_job(job, log=lambda m: click.echo(m, err=True))
    for problems in (report.logs, report.judgments):
        for p in (problems.problems if problems else [])[:20]:
            click.echo(f"rejected line {p.line}: {p.reason}", err=True)
    res = report.result
    if res is None:
        return
    best = res.epochs[res.best_epoch - 1] if res.best_epoch >= 1 else None
    val = f", validation recall@100 {best.val_recall:.4f}" if best and best.val_recall is not None else ""
    click.echo(f"saved {out} ({report.triples} triples, best epoch {res.best_epoch}{val}, "
               f"{res.triples_per_s:.0f} triples/s)")


def two_tower_config(*, epochs: int, batch_size: int, lr: float, loss: str, margin: float, in_batch: bool, seed: int,
                     threads: int, progress: bool) -> TrainConfig:
    """The tower training options on the two-tower trainer's schedule (`--threads 0`: torch's default)."""
    from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig

    schedule = TWO_TOWER_SCHEDULE.replace(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                          threads=threads or None, progress=progress)
    return TrainConfig(schedule=schedule, loss=loss, margin=margin, in_batch=in_batch)


def backbone_config(*, epochs: float, lr: float, batch_size: int, seed: int, threads: int, progress: bool
                    ) -> BackboneTuneConfig:
    """The `--backbone-*` options on the backbone tuning's schedule (warm-up and weight decay stay its own)."""
    from dsr.encoders.backbone_tuning import BACKBONE_SCHEDULE, BackboneTuneConfig

    return BackboneTuneConfig(schedule=BACKBONE_SCHEDULE.replace(epochs=epochs, lr=lr, batch_size=batch_size,
                                                                 seed=seed, threads=threads or None,
                                                                 progress=progress))


from dsr.commands.train_teacher import teacher as _teacher  # noqa: E402

train.add_command(_teacher)
train.add_command(__import__("dsr.commands.train_ranker", fromlist=["ranker"]).ranker)
