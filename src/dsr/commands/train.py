"""`dsr train`: both models from a shop's data in one command, and the per-model commands under it.

`dsr train --catalog C --logs L --judgments J --out DIR` chooses the recipe from the data, trains the
retrieval towers and the ranker, and ends with the validation table and the pipeline to serve
(`dsr.jobs.train_all`). `dsr train retrieval`, `ranker` and `teacher` train one model each, with
every option exposed; their defaults are the recipe that wins on the shared sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dsr.device import default_threads
from dsr.jobs.recipe import BACKBONES, TUNED_TOWERS

if TYPE_CHECKING:  # pragma: no cover
    from dsr.encoders.backbone_tuning import BackboneTuneConfig
    from dsr.encoders.trainer import TrainConfig

_RUN_OPTIONS = ("catalog", "logs", "judgments", "out", "log_format", "applications", "max_errors", "time_budget",
                "threads", "device", "backbone", "validation_share", "seed", "force", "progress", "start_from")


@click.group("train", invoke_without_command=True, subcommand_metavar="[retrieval|ranker|teacher] ...")
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Catalog file (jsonl, csv or parquet).")
@click.option("--logs", "logs", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Search log file(s): OpenSearch UBI or the simple jsonl sessions. Repeatable.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Graded judgments: query<TAB>item_id<TAB>grade.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory: dsr/ (retrieval model), ranker/, report.json. Re-running the same "
                   "command there resumes: finished stages are skipped.")
@click.option("--format", "log_format", type=click.Choice(["auto", "ubi", "jsonl"]), default="auto",
              show_default=True, help="Log format.")
@click.option("--application", "applications", multiple=True,
              help="Keep only UBI events of this application (repeatable).")
@click.option("--max-errors", type=int, default=100, show_default=True,
              help="Stop when more input lines than this are malformed (they are always reported).")
@click.option("--time-budget", default=None, metavar="DURATION",
              help="Seconds (600) or 90s / 30m / 1.5h for the whole run: each stage gets a share and stops "
                   "early at it, keeping what it learnt; the recipe fits its choices to it.")
@click.option("--threads", type=click.IntRange(min=1), default=default_threads(), show_default=True,
              help="CPU threads for torch and faiss (default: the physical cores, at most 2, so training "
                   "does not stall under other load).")
@click.option("--device", default=None, help="torch device (default: the GPU when present, else the CPU).")
@click.option("--backbone", type=click.Choice(BACKBONES), default="auto", show_default=True,
              help="Retrieval towers: MiniLM fine-tuned then heads (tuned), heads on the frozen MiniLM "
                   "(frozen), hashed n-grams only (none); auto chooses from the data and the budget.")
@click.option("--validation-share", type=click.FloatRange(0.0, 0.5, min_open=True), default=None,
              help="Share held out for the validation table (default: the recipe's, 10-20% of the queries).")
@click.option("--start-from", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The --out of an earlier dsr train (another shop's or set's data): its tuned backbone is where "
                   "the backbone tuning starts and its rankers go on training, for a shop with few queries.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Run every stage again, even those an earlier run finished.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def train(ctx: click.Context, **options: Any) -> None:
    """Train the retrieval towers and the ranker from a catalog and logs and/or judgments, in one run.

    The recipe is chosen from the data (printed with its reasons); a validation part is held out by
    query (or by time for logs); the run ends with validation NDCG@10 / recall@100 of BM25, DSR, hybrid
    and hybrid + re-rank and the pipeline to serve. `dsr train retrieval|ranker|teacher` train one
    model each, with every option.
    """
    if ctx.invoked_subcommand is not None:
        given = [f"--{n.replace('_', '-')}" for n in _RUN_OPTIONS
                 if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"{', '.join(given)} go after `dsr train {ctx.invoked_subcommand}`, "
                                   "or without a sub-command for the whole run")
        return
    _train_all(ctx.obj, **options)


def _train_all(settings: Any, *, catalog: Path | None, logs: tuple[Path, ...], judgments: Path | None,
               out: Path | None, log_format: str, applications: tuple[str, ...], max_errors: int,
               time_budget: str | None, threads: int, device: str | None, backbone: str,
               validation_share: float | None, seed: int, force: bool, progress: bool,
               start_from: Path | None) -> None:
    from dsr.jobs.budget import parse_duration
    from dsr.jobs.train_all import TrainingJob, run_training
    from dsr.jobs.validation_table import format_table, serve_hint

    if catalog is None or out is None:
        raise click.UsageError("dsr train needs --catalog and --out with --logs and/or --judgments "
                               "(or a sub-command: retrieval, ranker, teacher)")
    if not logs and judgments is None:
        raise click.UsageError("no training data: give --logs and/or --judgments")
    job = TrainingJob(catalog=catalog, out=out, logs=logs, judgments=judgments, log_format=log_format,
                      applications=applications or None, max_errors=max_errors,
                      time_budget_s=parse_duration(time_budget), threads=threads, device=device, backbone=backbone,
                      validation_share=validation_share, seed=seed, progress=progress, force=force,
                      settings=settings, start_from=start_from)
    report = run_training(job, log=lambda m: click.echo(m, err=True))
    resumed = [s.name for s in report.stages if s.status == "resumed"]
    if resumed:
        click.echo(f"resumed (finished earlier): {', '.join(resumed)}")
    if report.table is not None:
        click.echo(format_table(report.table))
        click.echo("serve it: " + serve_hint(report.table.recommended()[0], out / "dsr", out / "ranker"))
    click.echo(f"models: {out / 'dsr'}, {out / 'ranker'}; report: {out / 'report.json'}")


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
@click.option("--loss", type=click.Choice(["hinge", "softmax"]), default=TUNED_TOWERS.loss, show_default=True,
              help="In-batch sampled softmax, or the paper's hinge (with --backbone none, say).")
@click.option("--margin", type=float, default=0.3, show_default=True, help="Hinge margin δ.")
@click.option("--backbone", type=click.Choice(["none", "minilm"]), default="minilm", show_default=True,
              help="Sentence-transformers backbone under trainable tower heads (offline MiniLM); none: hashed "
                   "n-gram towers only.")
@click.option("--tune-backbone/--no-tune-backbone", default=True, show_default=True,
              help="Fine-tune the backbone's own weights on the triples first (in-batch softmax), then train "
                   "the heads on it; the tuned backbone is saved inside the model directory. "
                   "--no-tune-backbone keeps it frozen; --backbone none has nothing to tune.")
@click.option("--backbone-epochs", type=float, default=TUNED_TOWERS.backbone_epochs, show_default=True,
              help="Passes over the triples when tuning the backbone (fractions allowed).")
@click.option("--backbone-lr", type=float, default=5e-5, show_default=True)
@click.option("--backbone-batch-size", type=int, default=64, show_default=True)
@click.option("--personalise/--no-personalise", default=False, show_default=True,
              help="Add user features (segment, recent clicks) to the query tower (DPSR).")
@click.option("--dim", type=int, default=None, help="Embedding dimension (default 64; 384 with --backbone).")
@click.option("--hidden", default=",".join(map(str, TUNED_TOWERS.hidden)), show_default=True,
              help="Hidden ReLU layer sizes.")
@click.option("--epochs", type=int, default=TUNED_TOWERS.epochs, show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=TUNED_TOWERS.lr, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--validation-share", type=float, default=0.1, show_default=True,
              help="Share of queries held out to report validation recall@100 each epoch.")
@click.option("--device", default=None, help="torch device (default: the GPU when present, else the CPU).")
@click.option("--threads", type=int, default=default_threads(), show_default=True,
              help="CPU threads for torch (default: the physical cores, at most 2; 0: torch's default).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def retrieval(ctx: click.Context, catalog: Path, logs: tuple[Path, ...], judgments: Path | None, out: Path,
              log_format: str, applications: tuple[str, ...], max_errors: int, negatives: str, in_batch: bool,
              loss: str, margin: float, backbone: str, tune_backbone: bool, backbone_epochs: float, backbone_lr: float,
              backbone_batch_size: int, personalise: bool, dim: int | None, hidden: str, epochs: int,
              batch_size: int, lr: float, seed: int, validation_share: float, device: str | None,
              threads: int, progress: bool) -> None:
    """Train the DSR query and item towers from search logs (and judgments).

    The defaults are the recipe that wins on the shared sets: MiniLM fine-tuned for one pass over the
    triples, then four epochs of residual heads with in-batch softmax at lr 3e-4. The cheap hashed
    n-gram towers are `--backbone none --loss hinge --epochs 5 --lr 2e-3 --hidden 256,128`.
    """
    from dsr.device import use_threads
    from dsr.jobs.train_retrieval import RetrievalJob, parse_csv_option, parse_hidden, run_retrieval_job
    from dsr.logs.triples import TripleConfig

    if backbone == "none" and ctx.get_parameter_source("tune_backbone") is click.core.ParameterSource.DEFAULT:
        tune_backbone = False  # the default tunes the default backbone; without one there is nothing to tune
    if threads:
        use_threads(threads)

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
