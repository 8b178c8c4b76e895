"""`dsr attach`: build the sidecar of an index the shop already has, from the index itself, resumably."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dsr.encoders.resolve import MODEL_HELP


@click.command()
@click.option("--index", "index_name", required=True, help="The shop's index (or alias) to read.")
@click.option("--engine", "engine_url", default=None, help="Cluster URL (overrides the global --engine).")
@click.option("--model", default=None, help=f"Item encoder: {MODEL_HELP}.")
@click.option("--field", "fields", multiple=True, metavar="ITEM_FIELD=PATH",
              help="Where an item field is read from, e.g. title=name or brand=manufacturer.name (a dotted path "
                   "into objects); repeatable. Fields not given are detected from their usual names.")
@click.option("--sidecar", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sidecar directory (default: DATA_DIR/sidecar/INDEX).")
@click.option("--sidecar-kind", type=click.Choice(["auto", "flat", "hnsw", "ivfpq"]), default="auto",
              show_default=True, help="FAISS structure of a new sidecar (auto: by size).")
@click.option("--batch-size", type=int, default=500, show_default=True,
              help="Documents per page read and encoded; the first page is the sample fields are detected in.")
@click.option("--max-rejects", type=int, default=None, help="Stop once more documents than this were rejected.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rejects file, jsonl (default: DATA_DIR/attach/INDEX.rejects.jsonl).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file (default: DATA_DIR/attach/INDEX.checkpoint.json).")
@click.option("--keep-alive", default="30m", show_default=True,
              help="How long the cluster keeps the read's point in time between pages (and for a resume).")
@click.option("--device", default=None, help="Encoder device (cpu, cuda); default: GPU when present.")
@click.option("--quiet", "-q", is_flag=True, default=False, help="No field map, progress bar or summary line.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a JSON report (field map, counts, seconds, items/s, exit code) to this file.")
@click.option("--write-vectors", is_flag=True, default=False,
              help="Also set each document's vector field in the index (partial updates; every other field is "
                   "kept), for the engine's own kNN.")
@click.option("--force", is_flag=True, default=False, help="Read from the top even if a checkpoint exists.")
@click.pass_context
def attach(ctx: click.Context, index_name: str, engine_url: str | None, model: str | None, fields: tuple[str, ...],
           sidecar: Path | None, sidecar_kind: str, batch_size: int, max_rejects: int | None,
           rejects_path: Path | None, checkpoint_path: Path | None, keep_alive: str, device: str | None,
           quiet: bool, report_path: Path | None, write_vectors: bool, force: bool) -> None:
    """Read every document of the shop's index, map its fields onto dsr's items, and build the sidecar.

    No catalog file is needed: the documents are read from the cluster with dsr's own credentials and
    left as they are (with --write-vectors dsr adds its vector field to them, and nothing else); the
    item id is the document's _id. One line per item field says where it is read
    from ("title <- name (detected)"). Documents without a title after mapping go to the rejects file
    with the reason. Re-running the same command after a crash resumes from the checkpoint. Exit
    status: 0 all written, 4 some documents rejected, 5 stopped past --max-rejects.
    """
    from dsr.backends import connect
    from dsr.encoders.resolve import resolve_encoder
    from dsr.ingest.attach import AttachOptions
    from dsr.ingest.attach import attach as run_attach
    from dsr.ingest.checkpoint import model_identity
    from dsr.ingest.field_map import parse_field_options
    from dsr.sidecar import default_sidecar_dir

    given = parse_field_options(fields)
    settings = ctx.obj.with_engine(engine_url)
    data_dir = Path(settings.data_dir)
    options = AttachOptions(batch_size=batch_size, max_rejects=max_rejects, sidecar_kind=sidecar_kind,
                            progress=not quiet, keep_alive=keep_alive, force=force, write_vectors=write_vectors)
    encoder = resolve_encoder(model, device=device)
    backend = connect(settings)

    def tell(lines: list[str]) -> None:
        if not quiet:
            for line in lines:
                click.echo(line, err=True)

    try:
        report = run_attach(
            backend=backend, index=index_name, encoder=encoder,
            sidecar_dir=sidecar or default_sidecar_dir(data_dir, index_name),
            rejects_path=rejects_path or data_dir / "attach" / f"{index_name}.rejects.jsonl",
            checkpoint_path=checkpoint_path or data_dir / "attach" / f"{index_name}.checkpoint.json",
            given=given, options=options, model=model_identity(model), tell=tell,
        )
    finally:
        backend.close()
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    if not quiet:
        click.echo(report.summary(), err=True)
    if report.exit_code:
        sys.exit(report.exit_code)  # SystemExit: click's non-standalone mode would swallow ctx.exit
