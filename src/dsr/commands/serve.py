"""`dsr serve`: the Elasticsearch-compatible endpoint (pass-through proxy + `ext.dsr` hybrid search)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dsr.settings import ConnectionSettings

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def searcher_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose the index, the models and the vector side (shared with `dsr search`)."""
    for option in reversed([
        click.option("--engine", "engine_url", default=None,
                     help="Cluster URL (overrides the global --engine); none or 'embedded' -> embedded."),
        click.option("--index", default=None, help="The catalog index to search (an index or an alias)."),
        click.option("--model", default="minilm", show_default=True,
                     help="Query encoder, the one used by `dsr ingest`: a trained model directory, 'minilm', "
                          "'hashing[:DIM]', or 'none' (term-only)."),
        click.option("--ranker", "ranker_dir", type=_DIR, default=None,
                     help="Siamese ranker directory; without it, fused order."),
        click.option("--sidecar", default=None,
                     help="FAISS sidecar directory or http(s) URL (default: DATA_DIR/sidecar/INDEX when it "
                          "exists, else the engine's own kNN)."),
        click.option("--fusion", type=click.Choice(["rrf", "linear"]), default="rrf", show_default=True,
                     help="Default fusion of term and vector hits."),
        click.option("--rrf-k", type=click.IntRange(min=1), default=60, show_default=True,
                     help="RRF's k (damping of the head)."),
        click.option("--max-k", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Largest k / term_k / rerank_top a request may ask for."),
    ]):
        fn = option(fn)
    return fn


def build_settings(conn: ConnectionSettings, **opts: Any) -> Any:
    from dsr.search.fusion import FusionConfig
    from dsr.server.dsr_request import Limits
    from dsr.server.settings import ServeSettings

    extra: dict[str, Any] = {k: opts[k] for k in ("host", "port", "max_cluster_requests", "max_queued_searches",
                                                  "resolve_ttl_s", "reload_s") if k in opts}
    if "max_body_mb" in opts:
        extra["max_body_bytes"] = int(opts["max_body_mb"] * 1024 * 1024)
    default_k = min(100, opts["max_k"])
    index, model, ranker_dir, sidecar = opts["index"], opts["model"], opts["ranker_dir"], opts["sidecar"]
    fusion = FusionConfig(mode=opts["fusion"], rrf_k=opts["rrf_k"])
    entries: tuple[Any, ...] = ()
    if opts.get("config") is not None:
        from dsr.server.serve_config import load_serve_config

        if index is not None:
            raise click.UsageError("give either --config or --index: the configuration names the indexes")
        entries = load_serve_config(opts["config"], max_k=opts["max_k"])
        first = entries[0]
        index, model, ranker_dir, sidecar, fusion = first.name, first.model, first.ranker, first.sidecar, first.fusion
    if index is None:
        raise click.UsageError("--index is required" + (" (or --config FILE)" if "config" in opts else ""))
    if opts.get("hybrid_by_default"):
        extra["hybrid_by_default"] = True
    if opts.get("judgments") is not None:
        extra["judgments"] = opts["judgments"]
    return ServeSettings(
        connection=conn.with_engine(opts["engine_url"]), index=index, model=model,
        ranker_dir=ranker_dir, sidecar=sidecar, entries=entries,
        limits=Limits(max_k=opts["max_k"], default_k=default_k, default_rerank_top=default_k,
                      **{k: opts[k] for k in ("max_text_chars", "max_text_terms") if k in opts}),
        fusion=fusion, **extra,
    )


@click.command("serve")
@searcher_options
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Serve configuration (TOML or YAML): the indexes, aliases and patterns answered hybrid, each "
                   "with its models, sidecar, fusion defaults and the query forms that carry the shopper's text. "
                   "Replaces --index/--model/--ranker/--sidecar.")
@click.option("--hybrid-by-default", is_flag=True,
              help="Answer --index's plain searches (without ext.dsr) hybrid when their query holds a text, as "
                   "`hybrid = true` in a configuration does.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Judgments the relevance workbench (/_dsr/) starts with: query, item_id, grade as tsv/csv/json/"
                   "jsonl, as dsr eval reads them. Grades given in the page go to DATA_DIR/workbench/.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; anything else exposes the cluster).")
@click.option("--port", type=click.IntRange(0, 65535), default=9400, show_default=True)
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=100.0, show_default=True,
              help="Largest request body accepted (HTTP 413 above it).")
@click.option("--max-cluster-requests", type=click.IntRange(min=1), default=8, show_default=True,
              help="Cluster requests the ext.dsr searches have in flight at most (and searches running at "
                   "once); more wait.")
@click.option("--max-text-chars", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Longest ext.dsr text accepted (HTTP 400 above it).")
@click.option("--max-text-terms", type=click.IntRange(min=1), default=64, show_default=True,
              help="Most words an ext.dsr text may hold (HTTP 400 above it); keeps the term side within the "
                   "cluster's max_clause_count.")
@click.option("--max-queued-searches", type=click.IntRange(min=0), default=100, show_default=True,
              help="ext.dsr searches that may wait for the cluster; one more is answered 429 with Retry-After.")
@click.option("--alias-ttl", "resolve_ttl_s", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds what --index (an alias) and a search's target resolve to is kept; a moved alias is "
                   "followed within it.")
@click.option("--reload-interval", "reload_s", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between looks at the sidecar for what other replicas and `dsr sync` wrote to it.")
@click.pass_obj
def serve(conn: ConnectionSettings, **opts: Any) -> None:
    """Serve an Elasticsearch-compatible endpoint that adds hybrid search to INDEX.

    Every request is passed to the cluster unchanged, except `/{index}/_search` bodies that carry an
    `ext.dsr` object, and (with --config or --hybrid-by-default) the searches of the configured indexes
    whose query holds a shopper's text: those are answered hybrid, in the cluster's own response shape.
    """
    import uvicorn

    from dsr.server import create_app

    settings = build_settings(conn, **opts)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dsr").setLevel(logging.DEBUG if conn.debug else logging.INFO)
    if not _is_loopback(settings.host):
        click.echo(f"warning: listening on {settings.host}: anyone who can reach it can use the cluster "
                   "through it", err=True)
    from dsr.ingest.follow import follower_for

    app = create_app(settings, follow=follower_for)
    target = "embedded index" if settings.embedded else "cluster"
    served = ", ".join(f"{e.name} ({'hybrid' if e.hybrid else 'ext.dsr'})" for e in settings.served_entries())
    click.echo(f"dsr serve: http://{settings.host}:{settings.port} -> {target}, serving {served}", err=True)
    click.echo(f"relevance workbench: http://{settings.host}:{settings.port}/_dsr/", err=True)
    # no access log: URLs may carry credentials in query strings; we never log headers either
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning",
                server_header=False, date_header=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
