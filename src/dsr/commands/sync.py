"""`dsr sync`: take into the sidecar the writes made to the index without passing through `dsr serve`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from dsr.encoders.resolve import MODEL_HELP


@click.command()
@click.option("--index", "index_name", required=True, help="The index (or alias) whose sidecar is brought in step.")
@click.option("--engine", "engine_url", default=None, help="Cluster URL (overrides the global --engine).")
@click.option("--model", default=None, help=f"Item encoder the sidecar was built with: {MODEL_HELP}.")
@click.option("--sidecar", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sidecar directory (default: DATA_DIR/sidecar/INDEX).")
@click.option("--since-field", default=None,
              help="An update-time field of the documents (e.g. updated_at): only documents whose field is at least "
                   "the last value seen (minus --overlap) are read. Default: compare _seq_no with the sidecar's.")
@click.option("--overlap", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="How far below the last value seen --since-field reads again (seconds for a date field).")
@click.option("--follow", is_flag=True, default=False, help="Repeat every --interval seconds until interrupted.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between passes with --follow.")
@click.option("--device", default=None, help="Encoder device (cpu, cuda); default: GPU when present.")
@click.option("--quiet", "-q", is_flag=True, default=False, help="No summary line per pass.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print each pass's report as JSON.")
@click.pass_context
def sync(ctx: click.Context, index_name: str, engine_url: str | None, model: str | None, sidecar: Path | None,
         since_field: str | None, overlap: float, follow: bool, interval: float, device: str | None, quiet: bool,
         as_json: bool) -> None:
    """Re-read from the cluster the documents written since the last pass and update the sidecar.

    For writes that bypass `dsr serve` (whose write-through follows its own). Changed documents are
    found by --since-field, else by their _seq_no; deleted ones by comparing id sets. After a pass the
    sidecar holds every write acknowledged before it started; `dsr verify` shows any drift left.
    """
    from dsr.encoders.resolve import resolve_encoder
    from dsr.errors import UsageError
    from dsr.ingest.follow import follower_for
    from dsr.ingest.sync import sync_once
    from dsr.sidecar import default_sidecar_dir

    settings = ctx.obj.with_engine(engine_url)
    directory = sidecar or default_sidecar_dir(Path(settings.data_dir), index_name)
    if not directory.is_dir():
        raise UsageError(f"no sidecar at {directory}: build it first with `dsr attach` or `dsr ingest`")
    encoder = resolve_encoder(model, device=device)
    follower = follower_for(settings, index_name, directory, encoder, index_name)
    try:
        while True:
            report = sync_once(follower, since_field=since_field, overlap=overlap)
            if as_json:
                click.echo(json.dumps(report.to_dict()))
            elif not quiet:
                click.echo(report.summary(), err=True)
            if not follow:
                break
            time.sleep(interval)
    finally:
        follower.close()
