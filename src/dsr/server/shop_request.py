"""A shop's own search body read for a hybrid answer, or the reason it is passed to the cluster instead.

Two ways in:

* a search on a configured index without `ext.dsr` (`hybrid = true` in the serve configuration):
  answered hybrid when its query holds a shopper's text in one of the entry's `text_queries`, and
  every key of the body and the URL is one a hybrid answer honours. Otherwise it is the shop's plain
  search, passed to the cluster untouched, and `NotHybrid` says why (the answer's `X-Dsr-Reason`).
* a search with `ext.dsr` that asks for more than dsr answers itself (aggregations, sort, highlight,
  ...): the caller asked for hybrid, so what cannot be honoured is a 400 that names it.

`ext.dsr` options override the entry's defaults per request in both (`text` replaces the text found
in the query).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsr.backends.cluster import term_query
from dsr.errors import UsageError
from dsr.search.request import SearchRequest
from dsr.search.shop_query import TEXT_QUERY_FORMS, ShopQuery, read_shop_query
from dsr.search.shop_search import ShopSearchRequest, refused_keys
from dsr.server.dsr_request import ExtOptions, Limits, check_body, check_text
from dsr.server.errors import RequestError
from dsr.server.serve_config import ServedEntry


class NotHybrid(Exception):
    """A plain search on a configured index that is passed to the cluster untouched; the message says why."""


def shop_search_request(body: Mapping[str, Any], params: Mapping[str, str], limits: Limits, *,
                        entry: ServedEntry | None, ext: ExtOptions | None) -> ShopSearchRequest:
    """The hybrid search of a shop's body.

    Raises:
        NotHybrid: (no `ext`) the body is the shop's plain search, for the cluster to answer.
        RequestError: (with `ext`) what the caller asked cannot be answered hybrid; a 400 naming it.
    """
    def refuse(message: str) -> Exception:
        return RequestError(message) if ext is not None else NotHybrid(message)

    try:
        check_body(body, limits)
    except RequestError as e:
        raise refuse(str(e)) from None
    refused = refused_keys(body, params)
    if refused:
        detail = "; ".join(f"[{key}]: {why}" for key, why in sorted(refused.items()))
        raise refuse(f"a hybrid search cannot honour {sorted(refused)} ({detail})")
    query = body.get("query")
    if query is not None and not isinstance(query, dict):
        raise refuse("[query] must be an object")
    forms = entry.text_queries if entry is not None else TEXT_QUERY_FORMS
    shop_query = read_shop_query(query, forms)
    text = ext.text if ext is not None and ext.text is not None else shop_query.text
    if text is None:
        where = (f"looked for {', '.join(forms)}, at the top, in bool must/should and in function_score, "
                 "constant_score, boosting and dis_max queries")
        raise (RequestError(f"[ext.dsr.text] is required: the query holds no shopper's text ({where})")
               if ext is not None else NotHybrid(f"no shopper's text in the query ({where})"))
    try:
        text = check_text(text, limits, "ext.dsr.text" if ext is not None and ext.text is not None else "query")
    except RequestError as e:
        raise refuse(str(e)) from None
    if query is None:  # the text only: the term side is dsr's own match on the catalog fields
        shop_query = ShopQuery(term_query(text, None, None), text)
    options = ext or ExtOptions()
    rerank = options.rerank if options.rerank is not None else (entry.rerank if entry is not None else True)
    try:
        search = SearchRequest(text, user=options.user, filters=options.filters, term_k=options.term_k,
                               knn_k=options.k, fusion=options.fusion, rerank=rerank, rerank_top=options.rerank_top)
    except UsageError as e:
        raise refuse(str(e)) from None
    return ShopSearchRequest(body=body, params=params, query=shop_query, search=search)
