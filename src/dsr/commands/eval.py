"""`dsr eval`: compare pipelines on judged queries and write a report (a thin shell over `dsr.eval`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("eval")
@click.option(
    "--dataset",
    "datasets",
    default=None,
    help="Public set(s) from the shared datasets folder, comma-separated: homedepot, crowdflower, "
    "bestbuy-small, esci-ubi. Env DSR_DATASETS points at the folder.",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your own catalog (jsonl), with --judgments.",
)
@click.option(
    "--judgments",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your own judgments: query, item_id, grade (tsv/csv/json/jsonl; optional split column).",
)
@click.option(
    "--pipelines",
    default="bm25,knn-untuned,engine-hybrid",
    show_default=True,
    help="Comma-separated: bm25, knn-untuned, engine-hybrid, dsr, hybrid-rrf, hybrid-linear, hybrid+rerank.",
)
@click.option(
    "--split",
    default="dev",
    show_default=True,
    help="Which split to report on (train, dev; all for --judgments).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for report.md, report.json, details.json, per-query tsv and PNG charts.",
)
@click.option("--quick", is_flag=True, help="Evaluate a deterministic sample of 200 queries per dataset.")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate this many queries (overrides --quick).",
)
@click.option("--engine", "engine_url", default=None, help="Cluster URL or 'embedded' (overrides the global --engine).")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Trained two-tower model dir (default: DATA_DIR/models/DATASET/retrieval).",
)
@click.option(
    "--ranker",
    "ranker_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Trained ranker dir (default: DATA_DIR/models/DATASET/ranker).",
)
@click.option(
    "--skip-missing",
    is_flag=True,
    help="Report pipelines that cannot be built as skipped instead of failing.",
)
@click.option("--export", "export_split", default=None, metavar="SPLIT",
              help="Instead of evaluating: write the dataset's SPLIT (e.g. train) to --out as catalog.jsonl, "
                   "judgments.SPLIT.tsv and, for click logs, sessions.SPLIT.jsonl, for the train commands.")
@click.option("--reindex", is_flag=True, help="Rebuild the evaluation index even when a complete one exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_obj
def eval_command(
    settings,
    datasets: str | None,
    catalog: Path | None,
    judgments: Path | None,
    pipelines: str,
    split: str,
    out_dir: Path,
    quick: bool,
    sample: int | None,
    engine_url: str | None,
    model_dir: Path | None,
    ranker_dir: Path | None,
    skip_missing: bool,
    export_split: str | None,
    reindex: bool,
    quiet: bool,
) -> None:
    """Evaluate retrieval pipelines on judged queries: NDCG@10, recall@100, MRR@10, paired tests, charts."""
    from dsr.errors import UsageError
    from dsr.eval.loaders import load_dataset, load_generic
    from dsr.jobs.evaluate.pipelines import parse_pipelines
    from dsr.jobs.evaluate.report import markdown_table, write_report
    from dsr.jobs.evaluate.runner import QUICK_QUERIES, evaluate_dataset
    from dsr.settings import ConnectionSettings

    settings = (settings or ConnectionSettings()).with_engine(engine_url)
    names = parse_pipelines(pipelines)
    if bool(catalog) != bool(judgments):
        raise UsageError("--catalog and --judgments go together")
    if not datasets and not catalog:
        raise UsageError("give --dataset NAME or --catalog FILE --judgments FILE")
    if datasets and catalog:
        raise UsageError("give either --dataset or --catalog/--judgments, not both")
    loaded = (
        [load_generic(catalog, judgments)]
        if catalog and judgments
        else [load_dataset(n.strip()) for n in str(datasets).split(",") if n.strip()]
    )
    if export_split:
        from dsr.eval.export import export_split as export

        for ds in loaded:
            written = export(ds, export_split, out_dir / ds.name if len(loaded) > 1 else out_dir)
            click.echo(f"{ds.name} {export_split}: " + ", ".join(str(p) for p in written.values()))
            for note in ds.notes:
                click.echo(f"note: {note}", err=True)
        return
    n = sample or (QUICK_QUERIES if quick else None)
    results = []
    for ds in loaded:
        if not quiet:
            click.echo(
                f"{ds.name} {split}: {len(ds.split(split))} queries"
                + (f", sampling {n}" if n and n < len(ds.split(split)) else ""),
                err=True,
            )
        results.append(
            evaluate_dataset(
                ds,
                names,
                settings=settings,
                split=split,
                sample=n,
                model_dir=model_dir,
                ranker_dir=ranker_dir,
                skip_missing=skip_missing,
                reindex=reindex,
                progress=not quiet,
            )
        )
    paths = write_report(results, out_dir)
    click.echo(markdown_table(results))
    for res in results:
        for note in res.notes:
            click.echo(f"note ({res.dataset}): {note}")
        click.echo(f"{res.dataset} {res.split}: {res.seconds:.1f} s (shared setup {res.setup_s:.1f} s)")
    click.echo(f"report: {paths['markdown']}  json: {paths['json']}")
