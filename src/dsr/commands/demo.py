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
@click.option("--serve", is_flag=True, help="Then serve the demo shop and its relevance workbench until Ctrl-C.")
@click.option("--port", type=click.IntRange(0, 65535), default=9400, show_default=True,
              help="Port of --serve (on 127.0.0.1).")
@click.pass_obj
def demo(settings: ConnectionSettings, items: int, sessions: int, seed: int, out: Path | None, serve: bool,
         port: int) -> None:
    """Generate a catalog and click logs, train, ingest, and show BM25 vs hybrid vs hybrid + re-rank."""
    from dsr.jobs.demo import run_demo, serve_settings

    out = out or Path(settings.data_dir) / "demo"
    run_demo(out, n_items=items, n_sessions=sessions, seed=seed, echo=click.echo)
    if serve:
        import uvicorn

        from dsr.server import create_app

        click.echo(f"\nserving the demo shop: http://127.0.0.1:{port}/_dsr/ (Ctrl-C stops)")
        uvicorn.run(create_app(serve_settings(out, port=port)), host="127.0.0.1", port=port, access_log=False,
                    log_level="warning", server_header=False, date_header=False)
