"""`dsr verify`: compare the ids in the cluster and in the sidecar; `--repair` re-syncs the sidecar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

EXIT_DRIFT = 4


@click.command()
@click.option("--index", "index_name", required=True, help="Index name in the cluster.")
@click.option("--engine", "engine_url", default=None, help="Cluster URL or 'embedded' (overrides the global --engine).")
@click.option("--sidecar", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sidecar directory (default: DATA_DIR/sidecar/INDEX).")
@click.option("--repair", is_flag=True, default=False,
              help="Add ids missing from the sidecar (re-encoded from the cluster) and drop ids the cluster lacks.")
@click.option("--model", default=None, help="Item encoder used for --repair (same as the ingest's --model).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, index_name: str, engine_url: str | None, sidecar: Path | None, repair: bool,
           model: str | None, as_json: bool) -> None:
    """Report drift between the cluster and the sidecar. Exit status 0 when clean (or repaired), 4 on drift."""
    from dsr.backends import connect
    from dsr.encoders.resolve import resolve_encoder
    from dsr.ingest import verify as run_verify
    from dsr.sidecar import default_sidecar_dir

    settings = ctx.obj.with_engine(engine_url)
    encoder = resolve_encoder(model) if repair else None
    backend = connect(settings)
    try:
        report = run_verify(backend, index_name, sidecar or default_sidecar_dir(Path(settings.data_dir), index_name),
                            repair=repair, encoder=encoder)
    finally:
        backend.close()
    click.echo(json.dumps(report.to_dict()) if as_json else report.summary())
    if not (report.clean or (repair and report.repaired)):
        sys.exit(EXIT_DRIFT)  # SystemExit: click's non-standalone mode would swallow ctx.exit
