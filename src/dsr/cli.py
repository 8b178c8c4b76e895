"""The `dsr` command: a click group whose sub-commands live in `dsr.commands.*`.

Sub-commands are imported only when invoked, so `dsr --help` stays instant even though the models
pull in torch. User errors (`DsrError`) print one line and exit with their code; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# name -> "module:attribute"; each module holds one thin click command or group.
COMMANDS: dict[str, str] = {
    "train": "dsr.commands.train:train",
    "encode": "dsr.commands.encode:encode",
    "eval": "dsr.commands.eval:eval_command",
    "serve": "dsr.commands.serve:serve",
    "search": "dsr.commands.search:search",
    "engines": "dsr.commands.engines:engines",
    "demo": "dsr.commands.demo:demo",
    "check": "dsr.commands.check:check",
    "ingest": "dsr.commands.ingest:ingest",
    "attach": "dsr.commands.attach:attach",
    "verify": "dsr.commands.verify:verify",
    "sync": "dsr.commands.sync:sync",
    "sidecar": "dsr.commands.sidecar:sidecar",
    "distill": "dsr.commands.distill:distill",
}

HELP: dict[str, str] = {
    "train": "Train the retrieval towers (and other models) from search logs and judgments.",
    "encode": "Write item embeddings of a catalog with a trained two-tower model.",
    "eval": "Compare retrieval pipelines on judged queries (NDCG@10, recall@100, MRR@10) with a report.",
    "serve": "Serve an Elasticsearch-compatible endpoint that adds hybrid search (ext.dsr).",
    "search": "Run one hybrid search and print the hits with per-stage scores.",
    "engines": "Start, stop and inspect local single-node Elasticsearch / OpenSearch servers.",
    "demo": "Run the whole pipeline on a synthetic catalog with the embedded backend.",
    "check": "Check that the cluster is reachable and say which engine it is.",
    "ingest": "Validate, encode and write a catalog to the cluster and the vector sidecar (resumable).",
    "attach": "Build the sidecar of an index the shop already has, read from the index itself (resumable).",
    "verify": "Compare the ids in the cluster and the sidecar; --repair re-syncs.",
    "sync": "Take into the sidecar the writes made to the index without dsr serve (--follow repeats).",
    "sidecar": "Serve the FAISS vector sidecar over HTTP, or show its stats.",
    "distill": "Distil a cross-encoder teacher into the ranker: augment pairs with teacher labels, train the student.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--engine", "engine_url", envvar="DSR_ENGINE_URL", default=None,
              help="Cluster URL (http[s]://host:port), or 'embedded'. Env: DSR_ENGINE_URL.")
@click.option("--username", envvar="DSR_USERNAME", default=None, help="Basic-auth user. Env: DSR_USERNAME.")
@click.option("--password", envvar="DSR_PASSWORD", default=None, help="Basic-auth password. Env: DSR_PASSWORD.")
@click.option("--api-key", envvar="DSR_API_KEY", default=None, help="API key (Elasticsearch). Env: DSR_API_KEY.")
@click.option("--ca-cert", envvar="DSR_CA_CERT", default=None, type=click.Path(dir_okay=False),
              help="CA certificate (PEM) to verify the cluster. Env: DSR_CA_CERT.")
@click.option("--insecure", envvar="DSR_INSECURE", is_flag=True, default=False,
              help="Skip TLS certificate verification. Env: DSR_INSECURE.")
@click.option("--data-dir", envvar="DSR_DATA_DIR", default=".dsr", show_default=True,
              type=click.Path(file_okay=False), help="Where the embedded index and sidecars live. Env: DSR_DATA_DIR.")
@click.option("--debug", is_flag=True, default=False, help="Show tracebacks for errors.")
@click.version_option(package_name="dsr")
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """dsr: hybrid product search (BM25 + Deep Semantic Retrieval + pairwise re-ranking) for
    Elasticsearch and OpenSearch."""
    from dsr.settings import ConnectionSettings

    ctx.obj = ConnectionSettings.from_options(options)


def main(argv: list[str] | None = None) -> None:
    from dsr.errors import DsrError

    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="dsr", standalone_mode=False)
        # without standalone mode click returns a command's `ctx.exit(n)` code instead of exiting
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except DsrError as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
