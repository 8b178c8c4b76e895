"""Reading every document of an index, page by page, with a cursor that survives the reader's death.

`dsr attach` reads an index dsr never wrote and must be able to stop anywhere (SIGKILL included) and
carry on where it stopped. So a read is a sequence of pages, each with the `Cursor` that asks for the
page after it; the caller saves the cursor once it has made a page durable, and hands it back as
`after=` to resume. Asking for the same page twice returns the same documents: nothing is skipped and
nothing needs to be remembered beyond the cursor.

How each engine pages, and why:

* Elasticsearch 8: a point in time (`POST /INDEX/_pit`) and `search_after`, sorted by `_shard_doc`,
  the engine's own tiebreaker and its cheapest sort. The point in time fixes the view of the index
  for the whole read, so writes meanwhile cannot shift documents across pages. `_shard_doc` values
  mean something only within their point in time, so the cursor keeps its id; a resumed read reuses
  it while it lives (`keep_alive`, extended by every page). Once it has expired the read starts again
  from the top (`Cursor.restarted`): Elasticsearch 8 refuses to sort by `_id` (fielddata on `_id`
  is off unless the cluster setting `indices.id_field_data.enabled` is on), and no field of a
  shop's own mapping is known to be unique.
* OpenSearch 2.x: a point in time as well (`POST /INDEX/_search/point_in_time`, since 2.4; checked on
  2.19.1), with `search_after` sorted by `_id`. OpenSearch has no `_shard_doc`, and `_doc` is not
  unique across shards; `_id` is, and it sorts alike in every point in time, so an expired one is
  replaced by a new one and the read carries on after the last id, losing nothing (the price: the
  shards load the ids as fielddata, as any sort on `_id` does). A scroll is not
  used: each scroll request moves the cursor on the server, so a page received but not yet made
  durable when the reader died could not be asked for again.
* Embedded: its own table, sorted by id; the cursor is the last id.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dsr.errors import EngineError

log = logging.getLogger(__name__)

DEFAULT_KEEP_ALIVE = "30m"


@dataclass(frozen=True)
class Cursor:
    """Where a read stands: the sort values of the last document read, and the point in time they belong to.

    `stable` says the sort values mean the same in any point in time (OpenSearch's `_id`, the embedded
    index's id), so a resume does not need `pit` to live. `restarted` is set on the pages of a read
    that had to start again from the top because the cursor it was given could no longer be followed.
    """

    after: list[Any] | None = None
    pit: str | None = None
    stable: bool = True
    restarted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"after": self.after, "pit": self.pit, "stable": self.stable}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cursor:
        after = data.get("after")
        return cls(after=list(after) if after is not None else None, pit=data.get("pit"),
                   stable=bool(data.get("stable", True)))


@dataclass(frozen=True)
class Document:
    id: str
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentPage:
    """Up to `batch` documents in the read's order; `cursor` asks for the page after this one."""

    documents: list[Document]
    cursor: Cursor


@runtime_checkable
class DocumentReader(Protocol):
    """A backend that can read every document of an index resumably (every backend dsr has)."""

    def iter_documents(self, index: str, *, batch: int = 500, after: Cursor | None = None,
                       keep_alive: str = DEFAULT_KEEP_ALIVE) -> Iterator[DocumentPage]: ...


class PitDialect(Protocol):
    """How one engine opens, searches and closes a point in time."""

    stable: bool

    def open(self, client: Any, index: str, keep_alive: str) -> str: ...

    def sort(self) -> list[Any]: ...

    def close(self, client: Any, pit: str) -> None: ...


class ElasticsearchPit:
    stable = False

    def open(self, client: Any, index: str, keep_alive: str) -> str:
        return str(client.open_point_in_time(index=index, keep_alive=keep_alive)["id"])

    def sort(self) -> list[Any]:
        return ["_shard_doc"]

    def close(self, client: Any, pit: str) -> None:
        client.close_point_in_time(body={"id": pit})


class OpenSearchPit:
    stable = True

    def open(self, client: Any, index: str, keep_alive: str) -> str:
        return str(client.create_pit(index=index, params={"keep_alive": keep_alive})["pit_id"])

    def sort(self) -> list[Any]:
        return [{"_id": "asc"}]

    def close(self, client: Any, pit: str) -> None:
        client.delete_pit(body={"pit_id": [pit]})


def is_missing_context(error: EngineError) -> bool:
    """Whether the cluster refused a page because its point in time no longer exists."""
    text = f"{error} {error.error or ''}"
    return "search_context_missing_exception" in text or "No search context found" in text


def read_cluster_pages(backend: Any, dialect: PitDialect, index: str, *, batch: int, after: Cursor | None,
                       keep_alive: str) -> Iterator[DocumentPage]:
    """The pages of `index` through a point in time of `backend` (a `ClusterBackend`), as described above.

    The point in time is closed when the read reaches its end. A read that stops early (the caller
    stops iterating, the cluster cannot be reached, the process is killed) leaves it to expire after
    `keep_alive`, so that its last cursor can still use it until then.
    """
    client = backend.client
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    cursor = after or Cursor(stable=dialect.stable)
    restarted = False
    inherited = cursor.pit is not None  # a point in time of an earlier read, which may have expired since
    pit = cursor.pit
    if pit is None:
        with backend._translated_errors(f"open a point in time on {index}"):
            pit = dialect.open(client, index, keep_alive)
    search_after = cursor.after
    finished = False
    try:
        while True:
            body: dict[str, Any] = {"size": batch, "query": {"match_all": {}}, "sort": dialect.sort(),
                                    "pit": {"id": pit, "keep_alive": keep_alive}, "track_total_hits": False,
                                    "_source": {"excludes": [backend.embedding_field_default]}}
            if search_after is not None:
                body["search_after"] = search_after
            try:
                with backend._translated_errors(f"read the documents of {index}"):
                    response = client.search(body=body)
            except EngineError as e:
                if not (inherited and is_missing_context(e)):
                    raise
                # the point in time has expired: a stable cursor goes on in a new one, another starts again
                inherited = False
                with backend._translated_errors(f"open a point in time on {index}"):
                    pit = dialect.open(client, index, keep_alive)
                if not dialect.stable:
                    log.warning("the point in time of the read of %s has expired; reading it again from the top "
                                "(what was read before is written again, nothing is doubled)", index)
                    search_after, restarted = None, True
                continue
            inherited = False
            pit = str(response.get("pit_id") or pit)  # the engine may hand back a new id for the same view
            hits = response["hits"]["hits"]
            if not hits:
                finished = True
                return
            search_after = list(hits[-1]["sort"])
            documents = [Document(str(h["_id"]), dict(h.get("_source") or {})) for h in hits]
            yield DocumentPage(documents, Cursor(after=search_after, pit=pit, stable=dialect.stable,
                                                 restarted=restarted))
            if len(hits) < batch:
                finished = True
                return
    finally:
        if finished:
            with contextlib.suppress(Exception):
                dialect.close(client, pit)


PIT_DIALECTS: Mapping[str, PitDialect] = {"elasticsearch": ElasticsearchPit(), "opensearch": OpenSearchPit()}
