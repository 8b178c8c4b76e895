"""Build a `HybridSearcher` from paths and URLs, loading each model and client exactly once.

Shared by `dsr serve` and `dsr search`. Heavy modules (torch, faiss, engine clients) are imported
here, lazily, so importing the server package stays cheap.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsr.errors import ModelFormatError, VectorIndexError
from dsr.search.engine_vectors import EngineVectors
from dsr.search.hybrid import HybridSearcher
from dsr.search.request import SearchDefaults
from dsr.server.settings import ServeSettings
from dsr.sidecar.base import VectorReader

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def load_query_encoder(spec: str | Path) -> Any:
    """The query encoder named as `dsr ingest --model` names it (the same spec must be used for both).

    Loaded once per process: indexes served with the same model share it.
    """
    from dsr.encoders.resolve import resolve_encoder

    return resolve_encoder(spec)


@functools.lru_cache(maxsize=16)
def load_ranker(ranker_dir: Path) -> Any:
    """Any ranker `dsr train ranker` or `dsr distill train` wrote (a `Reranker`)."""
    from dsr.reranker.load import load_reranker

    return load_reranker(Path(ranker_dir))


def open_vectors(sidecar: str) -> Any:
    """The sidecar: a local directory (loaded in-process) or an http(s) URL of `dsr sidecar serve`.

    A directory is loaded as `LiveVectors`, which takes up what other processes (another replica's
    write-through, `dsr sync`) add to its journal when it is refreshed.
    """
    from dsr.sidecar import open_vector_index

    if sidecar.startswith(("http://", "https://")):
        return open_vector_index(sidecar)
    if not Path(sidecar).is_dir():
        raise VectorIndexError(f"sidecar directory {sidecar} does not exist")
    from dsr.sidecar.live import LiveVectors

    return LiveVectors(Path(sidecar))


def open_item_records(sidecar: str) -> Any:
    """The item records `dsr ingest` keeps in a local sidecar directory, None for a remote sidecar or none."""
    from dsr.sidecar.items import ItemRecords

    if sidecar.startswith(("http://", "https://")):
        return None
    return ItemRecords.open_existing(Path(sidecar))


def connect_backend(settings: ServeSettings) -> Any:
    from dsr.backends import connect

    return connect(settings.connection)


def build_searcher(settings: ServeSettings, *, backend: Any = None, index: str | None = None,
                   depths: SearchDefaults | None = None) -> HybridSearcher:
    """The searcher `settings` describe. The vector side uses the sidecar (given, or the one `dsr ingest`
    wrote for this index), else the engine's own kNN on the embedding field; `--model none` turns it off.

    `index` is the concrete index `settings.index` stands for when it names an alias (default: that
    name): its own sidecar is looked for first, then the one kept under the alias's name.
    """
    if backend is None:
        backend = connect_backend(settings)
    from dsr.backends.gated import GatedBackend

    if backend.flavor != "embedded" and not isinstance(backend, GatedBackend):
        # every search's requests to the cluster share one bound (the searchers of every served index too)
        backend = GatedBackend(backend, settings.max_cluster_requests)
    index = index or settings.index
    sidecar = settings.sidecar
    if sidecar is None:
        from dsr.sidecar import default_sidecar_dir

        for name in dict.fromkeys((index, settings.index)):
            default = default_sidecar_dir(settings.connection.data_dir, name)
            if default.is_dir():
                sidecar = str(default)
                break
    use_model = settings.model not in (None, "", "none")
    encoder = load_query_encoder(settings.model) if use_model else None
    sidecar_index = open_vectors(sidecar) if sidecar and encoder is not None else None
    if encoder is not None and sidecar_index is not None:
        _check_dimensions(encoder, sidecar_index, sidecar, settings.model)
    ranker = load_ranker(settings.ranker_dir) if settings.ranker_dir else None
    records = open_item_records(sidecar) if sidecar and sidecar_index is not None and ranker is not None else None
    if encoder is None:
        log.warning("--model none: dsr searches are term-only (plus re-ranking if --ranker is given)")
    vectors: VectorReader | None = sidecar_index
    if encoder is not None and vectors is None and backend.flavor != "embedded":
        vectors = EngineVectors(backend, index)  # the index's own embedding field
    if depths is None:
        depths = SearchDefaults(term_k=settings.limits.default_k, knn_k=settings.limits.default_k,
                                rerank_top=settings.limits.default_rerank_top, fusion=settings.fusion)
    return HybridSearcher(
        backend, index, encoder, vectors, ranker,
        fusion=depths.fusion, term_k=depths.term_k, knn_k=depths.knn_k, rerank_top=depths.rerank_top,
        item_records=records,
    )


def _check_dimensions(encoder: Any, sidecar_index: Any, sidecar: str | None, model: str | None) -> None:
    try:
        dim = sidecar_index.dim
    except VectorIndexError as e:  # a remote sidecar that is down now may be back later
        log.warning("cannot reach the sidecar to check its dimensions: %s", e)
        dim = encoder.dim
    if dim != encoder.dim:
        raise ModelFormatError(f"the query encoder ({model}) gives {encoder.dim} dimensions but "
                               f"the sidecar {sidecar} holds {dim}; serve with the --model used to ingest")


@dataclass(frozen=True)
class IndexSearcher:
    """The searcher of one concrete index, and what it is missing or holds on its own.

    `warning` says why its searches are term-only (no sidecar for the index yet); `missing_sidecar`
    is the directory it waits for; `owned` are the sidecar and item records opened for it alone,
    closed when it is released.
    """

    searcher: HybridSearcher
    warning: str | None = None
    missing_sidecar: Path | None = None
    owned: tuple[Any, ...] = ()


SHARED, PER_INDEX, ENGINE, NONE = "shared", "per-index", "engine", "none"
"""Where the vector side of each served index is read: the one `--sidecar`, the index's own sidecar
directory, the engine's kNN on the index, or nowhere (no query tower, or the embedded index without one)."""


def vector_mode(template: HybridSearcher, settings: ServeSettings) -> str:
    """How the searcher made at start finds its vectors, which every index served later follows."""
    vectors = getattr(template, "vectors", None)
    if getattr(template, "encoder", None) is None or vectors is None:
        return NONE
    if isinstance(vectors, EngineVectors):
        return ENGINE
    return SHARED if settings.sidecar is not None else PER_INDEX


def searcher_for_index(model: HybridSearcher, index: str, first: bool, *, settings: ServeSettings,
                       mode: str) -> IndexSearcher:
    """The searcher of `index` with `model`'s backend, models and defaults (each loaded once per process).

    `first`: `index` is the one the served name stood for when `model` (the searcher made at start)
    was made, and keeps its vectors. Any other index (the served alias moved to it) gets its own, as
    `mode` says: the one `--sidecar`, else `DATA_DIR/sidecar/INDEX`, else the engine's kNN on it. An
    index without its sidecar is searched term-only, with a warning, never with another's neighbours.
    """
    if first and model.index == index:
        return IndexSearcher(model)
    vectors: VectorReader | None = model.vectors if mode == SHARED or first else None
    records = model.item_records if mode == SHARED or first else None
    owned: list[Any] = []
    warning: str | None = None
    missing: Path | None = None
    if mode == ENGINE:
        vectors = EngineVectors(model.backend, index)
    elif mode == PER_INDEX and not first and model.encoder is not None:
        from dsr.sidecar import default_sidecar_dir

        directory = default_sidecar_dir(settings.connection.data_dir, index)
        missing = directory  # looked for again (or loaded again) until it is in use
        if not directory.is_dir():
            warning = (f"vector search unavailable: index [{index}] has no sidecar yet ({directory}); "
                       "term-only results until `dsr ingest` writes one")
        else:
            try:
                vectors = open_vectors(str(directory))
                _check_dimensions(model.encoder, vectors, str(directory), settings.model)
                if model.reranker is not None:
                    records = open_item_records(str(directory))
                missing = None
            except (VectorIndexError, ModelFormatError) as e:
                vectors = records = None
                warning = (f"vector search unavailable: the sidecar of index [{index}] cannot be used "
                           f"({e}); term-only results")
            owned.extend(held for held in (vectors, records) if held is not None)
    searcher = HybridSearcher(
        model.backend, index, model.encoder, vectors, model.reranker,
        fusion=model.defaults.fusion, term_k=model.defaults.term_k, knn_k=model.defaults.knn_k,
        rerank_top=model.defaults.rerank_top, embedding_field=model.embedding_field, item_records=records,
    )
    return IndexSearcher(searcher, warning, missing, tuple(owned))
