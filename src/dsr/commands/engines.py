"""`dsr engines start|stop|status`: local single-node servers for users without Docker."""

from __future__ import annotations

import click

from dsr.engines import (
    DISTRIBUTIONS,
    FLAVORS,
    clear_state,
    load_state,
    node_status,
    save_state,
    start_node,
    stop_node,
)

WHICH = click.Choice([*FLAVORS, "all"])


def _flavors(which: str) -> list[str]:
    return list(FLAVORS) if which == "all" else [which]


@click.group()
def engines() -> None:
    """Local Elasticsearch / OpenSearch nodes (fetched from Maven Central, cached, security off)."""


@engines.command()
@click.argument("which", type=WHICH, default="all")
@click.option("--port", type=int, default=None, help="HTTP port (one engine only); default: a free port.")
@click.option("--timeout", type=float, default=180.0, show_default=True, help="Seconds to wait for health.")
def start(which: str, port: int | None, timeout: float) -> None:
    """Start a node and print its URL (reuses one that is already running)."""
    if port is not None and which == "all":
        raise click.UsageError("--port needs one engine, not 'all'")
    for flavor in _flavors(which):
        info = load_state(flavor)
        if info and node_status(info) in ("green", "yellow"):
            click.echo(f"{flavor} {info.version} already running at {info.url}")
            continue
        click.echo(f"starting {flavor} {DISTRIBUTIONS[flavor].version} ...", err=True)
        info = start_node(flavor, port=port, timeout=timeout)
        save_state(info)
        click.echo(f"{flavor} {info.version} running at {info.url}")
        click.echo(f"  export DSR_ENGINE_URL={info.url}")


@engines.command()
@click.argument("which", type=WHICH, default="all")
def stop(which: str) -> None:
    """Stop a node started by `dsr engines start` and remove its data."""
    for flavor in _flavors(which):
        info = load_state(flavor)
        if info is None:
            click.echo(f"{flavor}: not running")
            continue
        stop_node(info)
        clear_state(flavor)
        click.echo(f"{flavor}: stopped")


@engines.command()
@click.argument("which", type=WHICH, default="all")
def status(which: str) -> None:
    """Show each node's URL and cluster health."""
    for flavor in _flavors(which):
        info = load_state(flavor)
        if info is None:
            click.echo(f"{flavor}: not running")
        else:
            click.echo(f"{flavor} {info.version}: {node_status(info)} at {info.url} (pid {info.pid})")
