"""What a shop's own search query says: the shopper's text, and what every hit must match.

A shop's front end sends its query in the engine's DSL, never dsr's: a `multi_match` (or `match`,
`combined_fields`, `simple_query_string`) on the shopper's text, usually inside a `bool` whose
`filter` and `must_not` hold the facet refinements and the shop's rules, sometimes wrapped in a
`function_score` that boosts by popularity or margin. dsr needs two things from it:

* **the text** the query tower encodes and the ranker reads: the first text query form found in the
  query itself, a `bool`'s `must` and `should` (nested `bool`s included), a `function_score`'s or
  `constant_score`'s query, a `boosting` query's `positive` or a `dis_max`'s queries;
* **the restrictions** the vector side's neighbours must pass too, so a filter applies to both sides:
  every `filter` and `must_not` clause, and every `must` clause that holds no shopper text, of the
  `bool` that holds the text and of each `bool` (or wrapper) above it. `should` clauses only score
  (or, when a `bool` has nothing else, say which texts may match), so they restrict nothing; the
  term side keeps them, and everything else of the shop's query, unchanged.

The restrictions go to the cluster as a query (`Restrictions.query`), and the cluster says which
neighbours match it: any filter the cluster understands works, not only dsr's filter language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TEXT_QUERY_FORMS = ("match", "multi_match", "combined_fields", "simple_query_string")
"""The query forms that carry a shopper's text by default (a serve configuration may name others)."""

KNOWN_TEXT_FORMS = (*TEXT_QUERY_FORMS, "match_phrase", "match_bool_prefix", "match_phrase_prefix", "query_string")

_SIMPLE_SYNTAX = re.compile(r'~\d*(?:\.\d+)?|[+|\-*()"]+')  # `~N` (fuzziness, slop) with its number


@dataclass(frozen=True)
class Restrictions:
    """What every hit of the shop's query must match, beside the text: filters and exclusions."""

    filters: tuple[Mapping[str, Any], ...] = ()
    must_not: tuple[Mapping[str, Any], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.filters or self.must_not)

    def query(self) -> dict[str, Any]:
        """The restrictions as one query in filter context (`match_all` when there are none)."""
        if not self:
            return {"match_all": {}}
        clause: dict[str, Any] = {}
        if self.filters:
            clause["filter"] = [dict(f) for f in self.filters]
        if self.must_not:
            clause["must_not"] = [dict(f) for f in self.must_not]
        return {"bool": clause}


@dataclass(frozen=True)
class ShopQuery:
    """A shop's query, read: the shopper's `text` (None: none found) and the `restrictions` of its hits."""

    query: Mapping[str, Any]
    text: str | None
    form: str | None = None  # the query form the text was found in
    restrictions: Restrictions = field(default_factory=Restrictions)


def read_shop_query(query: Mapping[str, Any] | None, forms: Sequence[str] = TEXT_QUERY_FORMS) -> ShopQuery:
    """The text and restrictions of `query` (a search body's `query`), text looked for in `forms`."""
    if not isinstance(query, Mapping) or not query:
        return ShopQuery(query or {}, None)
    found = _find_text(query, tuple(forms))
    if found is None:
        return ShopQuery(query, None)
    text, form, path = found
    filters: list[Mapping[str, Any]] = []
    must_not: list[Mapping[str, Any]] = []
    for node in path:
        bool_query = node.get("bool") if isinstance(node, Mapping) else None
        if not isinstance(bool_query, Mapping):
            continue
        filters.extend(_clauses(bool_query.get("filter")))
        must_not.extend(_clauses(bool_query.get("must_not")))
        filters.extend(c for c in _clauses(bool_query.get("must")) if _find_text(c, tuple(forms)) is None)
    return ShopQuery(query, text, form, Restrictions(tuple(filters), tuple(must_not)))


def _find_text(query: Any, forms: tuple[str, ...]) -> tuple[str, str, list[Mapping[str, Any]]] | None:
    """The first text in `query` (depth first, in the order the clauses are written), its form and the
    queries from the root down to the one that holds it (wrappers and `bool`s whose restrictions apply)."""
    if not isinstance(query, Mapping) or len(query) != 1:
        return None
    (kind, spec), = query.items()
    if kind in forms:
        text = _text_of(kind, spec)
        return (text, kind, [query]) if text else None
    if not isinstance(spec, Mapping):
        return None
    for child in _children(kind, spec):
        found = _find_text(child, forms)
        if found is not None:
            text, form, path = found
            return text, form, [query, *path]
    return None


def _children(kind: str, spec: Mapping[str, Any]) -> Iterator[Any]:
    """The sub-queries of a compound query where a shopper's text may be (never filter context, but for
    a `constant_score`'s filter, which is that query's only clause)."""
    if kind == "bool":
        yield from _clauses(spec.get("must"))
        yield from _clauses(spec.get("should"))
    elif kind == "function_score" or kind == "script_score":
        yield spec.get("query")
    elif kind == "constant_score":
        yield spec.get("filter")
    elif kind == "boosting":
        yield spec.get("positive")
    elif kind == "dis_max":
        yield from _clauses(spec.get("queries"))


def _clauses(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _text_of(kind: str, spec: Any) -> str | None:
    """The text a query form searches for: `{"match": {"title": "red shoe"}}`, `{"multi_match": {"query": ...}}`."""
    if not isinstance(spec, Mapping):
        return None
    if kind in ("match", "match_phrase", "match_bool_prefix", "match_phrase_prefix"):
        value = next(iter(spec.values()), None) if len(spec) == 1 else None
        if isinstance(value, Mapping):
            value = value.get("query")
    else:
        value = spec.get("query")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    if kind in ("simple_query_string", "query_string"):  # operators are not words the shopper typed
        value = _SIMPLE_SYNTAX.sub(" ", value)
    text = " ".join(value.split())
    return text or None
