"""`dsr encode`: item embeddings of a catalog with a trained two-tower model (batched, GPU when present)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("encode")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model directory written by `dsr train retrieval`.")
@click.option("--catalog", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (jsonl, csv or parquet).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .npy file; the item ids go beside it as <out>.ids.json.")
@click.option("--batch-size", type=int, default=4096, show_default=True)
@click.option("--device", default=None, help="torch device (default: the GPU when present, else the CPU).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def encode(model_dir: Path, catalog: Path, out: Path, batch_size: int, device: str | None, progress: bool) -> None:
    """Write the item-tower embeddings of every catalog item."""
    from dsr.jobs.train_retrieval import encode_catalog

    n = encode_catalog(model_dir, catalog, out, batch_size=batch_size, device=device, progress=progress)
    click.echo(f"wrote {n} item embeddings to {out}")
