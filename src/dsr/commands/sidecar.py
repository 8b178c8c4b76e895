"""`dsr sidecar serve|stats`: the vector index as its own process, and a look inside it."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _directory(ctx: click.Context, index_name: str | None, directory: Path | None) -> Path:
    from dsr.sidecar import default_sidecar_dir

    if directory is not None:
        return directory
    if index_name is None:
        raise click.UsageError("give --index NAME or --dir DIRECTORY")
    return default_sidecar_dir(Path(ctx.obj.data_dir), index_name)


@click.group()
def sidecar() -> None:
    """The FAISS vector sidecar written by `dsr ingest`."""


@sidecar.command()
@click.option("--index", "index_name", default=None, help="Serve DATA_DIR/sidecar/INDEX.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Serve this sidecar directory.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Search on the GPU (exact) when present, else CPU.")
@click.pass_context
def serve(ctx: click.Context, index_name: str | None, directory: Path | None, host: str, port: int,
          device: str) -> None:
    """Serve /knn, /health, /stats and /reload over HTTP (use the URL as the searcher's sidecar)."""
    from dsr.sidecar.server import serve as run_server

    path = _directory(ctx, index_name, directory)
    click.echo(f"serving {path} on http://{host}:{port}", err=True)
    run_server(path, host=host, port=port, device=device)


@sidecar.command()
@click.option("--index", "index_name", default=None, help="The sidecar DATA_DIR/sidecar/INDEX.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A sidecar directory.")
@click.pass_context
def stats(ctx: click.Context, index_name: str | None, directory: Path | None) -> None:
    """Load the sidecar (checksums verified) and print its size, kind and dimension as JSON."""
    from dsr.sidecar.faiss_index import FaissIndex

    click.echo(json.dumps(FaissIndex.load(_directory(ctx, index_name, directory), device="cpu").stats()))
