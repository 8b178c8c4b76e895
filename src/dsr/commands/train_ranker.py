"""`dsr train ranker`: the Siamese pairwise re-ranker (and its XGBoost baseline) from search logs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from dsr.device import default_threads

if TYPE_CHECKING:  # pragma: no cover
    from dsr.reranker.trainer import SiameseTrainConfig


@click.command("ranker")
@click.option("--logs", "logs", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Search log file(s): OpenSearch UBI (ndjson or bulk ndjson) or the simple jsonl sessions. "
                   "Repeatable.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Graded judgments (query<TAB>item_id<TAB>grade): each judged query is run through the hybrid "
                   "first stage and its candidates ordered by grade.")
@click.option("--unjudged-grade", type=float, default=None,
              help="Grade of first-stage candidates the judgments do not list (default: the lowest grade "
                   "present; use 0 with click judgments, where every listed item was clicked).")
@click.option("--click-sessions/--no-click-sessions", default=False, show_default=True,
              help="Logs without impressions: each session's query through the hybrid first stage, its clicked "
                   "items preferred over the other candidates, with the user's earlier clicks (needs --model for "
                   "the vector side).")
@click.option("--start-from", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A dsr train ranker output (or a Siamese ranker) whose models go on training on this data, "
                   "with their own features.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="DSR model for the first stage's vector side with --judgments (else BM25 alone).")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (jsonl, csv or parquet) the logs refer to.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: siamese/ and xgboost/ model directories plus training_summary.json.")
@click.option("--format", "log_format", type=click.Choice(["auto", "ubi", "jsonl"]), default="auto",
              show_default=True, help="Log format.")
@click.option("--application", "applications", multiple=True,
              help="Keep only UBI events of this application (repeatable); others are skipped and counted.")
@click.option("--max-errors", type=int, default=100, show_default=True,
              help="Stop when more log lines than this are malformed (they are always reported).")
@click.option("--features", "feature_set", type=click.Choice(["all", "numeric"]), default="all",
              show_default=True, help="Siamese inputs: numeric + text + click stream, or numeric only.")
@click.option("--position-eta", type=float, default=0.5, show_default=True,
              help="Position-bias correction: pairs weighted by position**eta of the preferred item (0 = off).")
@click.option("--max-weight", type=float, default=5.0, show_default=True, help="Clip for the pair weights.")
@click.option("--epochs", type=int, default=20, show_default=True, help="Most epochs (early stopping ends sooner).")
@click.option("--patience", type=int, default=3, show_default=True,
              help="Stop after this many epochs without a better validation session AUC.")
@click.option("--batch-size", type=int, default=512, show_default=True, help="Pairs per step.")
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--validation-share", type=float, default=0.1, show_default=True,
              help="Share of sessions held out for early stopping (split by session).")
@click.option("--xgboost/--no-xgboost", default=True, show_default=True,
              help="Also train the XGBoost pairwise baseline on the numeric features.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=default_threads(), show_default=True,
              help="CPU threads for training (default: the physical cores, at most 2).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_obj
def ranker(settings, logs: tuple[Path, ...], judgments: Path | None, unjudged_grade: float | None,
           click_sessions: bool, start_from: Path | None, model_dir: Path | None, catalog: Path,
           out: Path, log_format: str, applications: tuple[str, ...],
           max_errors: int, feature_set: str, position_eta: float, max_weight: float, epochs: int,
           patience: int, batch_size: int, lr: float, validation_share: float, xgboost: bool, seed: int,
           threads: int, progress: bool) -> None:
    """Train the Siamese pairwise re-ranker (DPR) from search sessions and/or graded judgments."""
    from dsr.device import use_threads
    from dsr.errors import UsageError
    from dsr.jobs.train_ranker import RankerJob, run_ranker_job
    from dsr.reranker.pairs import PositionBias

    use_threads(threads)

    if not 0.0 <= validation_share < 1.0:
        raise UsageError("--validation-share must be in [0, 1)")
    if position_eta < 0 or max_weight < 1:
        raise UsageError("--position-eta must be >= 0 and --max-weight >= 1")
    job = RankerJob(
        catalog=catalog, logs=logs, out=out, log_format=log_format, applications=applications or None,
        max_errors=max_errors, validation_share=validation_share, xgboost=xgboost, judgments=judgments,
        model=model_dir, unjudged_grade=unjudged_grade, click_sessions=click_sessions, start_from=start_from,
        cache_dir=Path(settings.data_dir) / "cache" / "embeddings" if settings else None,
        bias=PositionBias(eta=position_eta, max_weight=max_weight),
        train=siamese_config(feature_set=feature_set, epochs=epochs, patience=patience, batch_size=batch_size, lr=lr,
                             seed=seed, threads=threads, progress=progress),
    )
    report = run_ranker_job(job, log=lambda m: click.echo(m, err=True))
    for line in report.log_problems[:20]:
        click.echo(f"rejected {line}", err=True)
    click.echo(f"ranker written to {out}")


def siamese_config(*, feature_set: str, epochs: int, patience: int, batch_size: int, lr: float, seed: int,
                   threads: int, progress: bool) -> SiameseTrainConfig:
    """The training options on the Siamese ranker's schedule."""
    from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig

    schedule = RANKER_SCHEDULE.replace(epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, seed=seed,
                                       threads=threads, progress=progress)
    return SiameseTrainConfig(schedule=schedule, use_text=feature_set == "all")
