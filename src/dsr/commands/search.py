"""`dsr search`: one hybrid search from the command line, printed as a table with per-stage scores."""

from __future__ import annotations

import json
from typing import Any

import click

from dsr.commands.serve import build_settings, searcher_options
from dsr.errors import UsageError
from dsr.settings import ConnectionSettings


@click.command("search")
@click.argument("query")
@searcher_options
@click.option("--size", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="Keep only hits whose FIELD equals VALUE (repeatable).")
@click.option("--user", "user_json", default=None, help="User context as JSON, e.g. '{\"user_id\": \"u1\"}'.")
@click.option("--no-rerank", is_flag=True, default=False, help="Show the fused order.")
@click.option("--explain", is_flag=True, default=False, help="Show every stage's score and rank.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the hits as JSON lines.")
@click.pass_obj
def search(conn: ConnectionSettings, query: str, **opts: Any) -> None:
    """Run QUERY through term match + DSR neighbours + fusion + re-ranking and print the hits."""
    from dsr.search.request import SearchRequest
    from dsr.server.components import build_searcher

    settings = build_settings(conn, **opts)
    filters = _parse_filters(opts["filters"])
    user = None
    if opts["user_json"]:
        try:
            user = json.loads(opts["user_json"])
        except ValueError as e:
            raise UsageError(f"--user is not valid JSON: {e}") from e
        if not isinstance(user, dict):
            raise UsageError("--user must be a JSON object")
    searcher = build_searcher(settings)
    try:
        result = searcher.run(SearchRequest(query, user=user, filters=filters or None, size=opts["size"],
                                            rerank=not opts["no_rerank"]))
    finally:
        searcher.close()
        searcher.backend.close()
    if opts["as_json"]:
        for h in result.hits:
            click.echo(json.dumps({"rank": h.rank, "id": h.id, "score": h.score,
                                   "stages": {k: {"score": v.score, "rank": v.rank}
                                              for k, v in h.stages().items()},
                                   "source": dict(h.source)}))
        return
    click.echo(format_table(result, explain=opts["explain"]))
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)


def _parse_filters(raw: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--filter {item!r}: expected FIELD=VALUE")
        out.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def _cell(stage: Any) -> str:
    return "-" if stage is None else f"{stage.score:.4g} (#{stage.rank})"


def format_table(result: Any, *, explain: bool = False) -> str:
    """Hits as an aligned text table: rank, id, title, price and, with `explain`, each stage."""
    header = ["rank", "id", "title", "price", "score"]
    if explain:
        header += ["term", "vector", "fused", "rerank"]
    rows = [header]
    for h in result.hits:
        title = str(h.source.get("title", ""))
        title = title if len(title) <= 48 else title[:47] + "…"
        price = h.source.get("price")
        row = [str(h.rank), h.id, title, "" if price is None else f"{price}", f"{h.score:.4g}"]
        if explain:
            row += [_cell(h.term), _cell(h.vector), _cell(h.fused), _cell(h.rerank)]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    summary = (f"{len(result.hits)} of {result.pool} candidates (term {result.term_hits}, vector "
               f"{result.vector_hits} via {result.vector_source}; {result.fusion.mode.value} fusion; "
               f"re-ranked {result.reranked}; {result.timings_ms.get('total', 0):.1f} ms)")
    if result.degraded:
        summary += " [degraded]"
    return "\n".join([*lines, "", summary])
