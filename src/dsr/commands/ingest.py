"""`dsr ingest`: write a catalog to the cluster and to the vector sidecar, resumably."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dsr.encoders.resolve import MODEL_HELP


@click.command()
@click.argument("catalog", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--index", "index_name", required=True, help="Index name in the cluster (and of the sidecar).")
@click.option("--engine", "engine_url", default=None, help="Cluster URL or 'embedded' (overrides the global --engine).")
@click.option("--model", default=None, help=f"Item encoder: {MODEL_HELP}.")
@click.option("--sidecar", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sidecar directory (default: DATA_DIR/sidecar/INDEX).")
@click.option("--sidecar-kind", type=click.Choice(["auto", "flat", "hnsw", "ivfpq"]), default="auto",
              show_default=True, help="FAISS structure of a new sidecar (auto: by size).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default=None,
              help="Catalog format (default: from the extension).")
@click.option("--delete", "delete_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of ids to delete from both stores (one per line, or jsonl with 'id'); in an index dsr "
                   "did not create, from the sidecar only, unless --replace-documents.")
@click.option("--batch-size", type=int, default=256, show_default=True, help="Rows per encode + bulk write.")
@click.option("--max-rejects", type=int, default=None, help="Stop once more rows than this were rejected.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rejects file, jsonl (default: DATA_DIR/ingest/INDEX.rejects.jsonl).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file (default: DATA_DIR/ingest/INDEX.checkpoint.json).")
@click.option("--no-embedding-field", is_flag=True, default=False,
              help="Do not store the vector in the cluster (sidecar only; no engine kNN). In an index dsr did "
                   "not create, nothing is written to the cluster at all.")
@click.option("--replace-documents", is_flag=True, default=False,
              help="In an existing index dsr did not create, write each row as a whole document (replacing the "
                   "stored one, creating missing ones) and delete tombstoned/--delete ids from it. Without it dsr "
                   "only adds its vector field to documents the index already holds.")
@click.option("--device", default=None, help="Encoder device (cpu, cuda); default: GPU when present.")
@click.option("--quiet", "-q", is_flag=True, default=False, help="No progress bar and no summary line.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a JSON report (counts, seconds, items/s, exit code) to this file.")
@click.option("--force", is_flag=True, default=False,
              help="Ingest CATALOG from the top even if it was already ingested unchanged (or a checkpoint exists).")
@click.pass_context
def ingest(ctx: click.Context, catalog: Path | None, index_name: str, engine_url: str | None, model: str | None,
           sidecar: Path | None, sidecar_kind: str, fmt: str | None, delete_file: Path | None, batch_size: int,
           max_rejects: int | None, rejects_path: Path | None, checkpoint_path: Path | None,
           no_embedding_field: bool, replace_documents: bool, device: str | None, quiet: bool,
           report_path: Path | None, force: bool) -> None:
    """Validate, encode and write CATALOG (jsonl, csv or parquet) to the cluster and the sidecar.

    Re-running the same command after a crash, or after the cluster could not take a batch (unreachable,
    or still overloaded after the bulk write's backoff), resumes from the checkpoint. Re-running it after it
    finished writes nothing and says so, unless the catalog, model, index or sidecar changed since (--force
    ingests anyway). Rows with `"_deleted": true` are deleted. Into an existing index dsr did not create
    (the shop's own), dsr adds only its vector field to the documents the index holds, by partial
    updates: their other fields are kept, rows the index lacks are rejected, not created, and deletions
    reach the sidecar only; a vector field mapped otherwise is refused before anything is written
    (--replace-documents hands the index over to dsr). Exit status: 0 all written, 4 some rows
    rejected, 5 stopped past --max-rejects (a run with nothing to do exits as the run that did it).
    """
    from dsr.backends import connect
    from dsr.encoders.resolve import resolve_encoder
    from dsr.errors import UsageError
    from dsr.ingest import IngestOptions, read_delete_file
    from dsr.ingest import ingest as run_ingest
    from dsr.ingest.checkpoint import model_identity
    from dsr.sidecar import default_sidecar_dir

    if catalog is None and delete_file is None:
        raise UsageError("give a CATALOG file, --delete FILE, or both")
    settings = ctx.obj.with_engine(engine_url)
    data_dir = Path(settings.data_dir)
    options = IngestOptions(batch_size=batch_size, max_rejects=max_rejects, embed_in_cluster=not no_embedding_field,
                            fmt=fmt, sidecar_kind=sidecar_kind, progress=not quiet, force=force,
                            replace_documents=replace_documents)
    encoder = resolve_encoder(model, device=device)
    backend = connect(settings)
    try:
        report = run_ingest(
            catalog, backend=backend, index=index_name, encoder=encoder,
            sidecar_dir=sidecar or default_sidecar_dir(data_dir, index_name),
            rejects_path=rejects_path or data_dir / "ingest" / f"{index_name}.rejects.jsonl",
            checkpoint_path=checkpoint_path or data_dir / "ingest" / f"{index_name}.checkpoint.json",
            delete_ids=read_delete_file(delete_file) if delete_file else None,
            options=options, model=model_identity(model),
        )
    finally:
        backend.close()
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    for note in report.notes:  # what was decided about the cluster side is said even with --quiet
        click.echo(f"note: {note}", err=True)
    if not quiet:
        click.echo(report.summary(), err=True)
    if report.exit_code:
        sys.exit(report.exit_code)  # SystemExit: click's non-standalone mode would swallow ctx.exit
