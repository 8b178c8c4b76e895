"""`dsr check`: can dsr reach the configured cluster, and which engine is it?"""

from __future__ import annotations

import click

from dsr.backends import connect
from dsr.settings import ConnectionSettings


@click.command()
@click.option("--index", default=None, help="Also report this index's document count.")
@click.pass_obj
def check(settings: ConnectionSettings, index: str | None) -> None:
    """Connect to the cluster (or the embedded index) and report what was found."""
    backend = connect(settings)
    try:
        click.echo(f"{backend.flavor} at {backend.url}: reachable")
        if index:
            click.echo(f"index {index}: {backend.count(index)} documents")
    finally:
        backend.close()
