"""`dsr demo`: the whole mission on a bare machine (embedded backend, synthetic catalog)."""

from __future__ import annotations

from pathlib import Path

import click

from dsr.settings import ConnectionSettings


@click.command()
@click.option("--items", type=int, default=2000, show_default=True, help="Synthetic catalog size.")
@click.option("--sessions", type=int, default=8000, show_default=True, help="Simulated search sessions.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where models and indexes go (default: <data-dir>/demo).")
@click.pass_obj
def demo(settings: ConnectionSettings, items: int, sessions: int, seed: int, out: Path | None) -> None:
    """Generate a catalog and click logs, train, ingest, and show BM25 vs hybrid vs hybrid + re-rank."""
    from dsr.jobs.demo import run_demo

    run_demo(out or Path(settings.data_dir) / "demo", n_items=items, n_sessions=sessions, seed=seed,
             echo=click.echo)
