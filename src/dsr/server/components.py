"""Build a `HybridSearcher` from paths and URLs, loading each model and client exactly once.

Shared by `dsr serve` and `dsr search`. Heavy modules (torch, faiss, engine clients) are imported
here, lazily, so importing the server package stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dsr.errors import ModelFormatError, VectorIndexError
from dsr.search.engine_vectors import EngineVectors
from dsr.search.hybrid import HybridSearcher
from dsr.server.settings import ServeSettings
from dsr.sidecar.base import VectorReader

log = logging.getLogger(__name__)


def load_query_encoder(spec: str | Path) -> Any:
    """The query encoder named as `dsr ingest --model` names it (the same spec must be used for both)."""
    from dsr.encoders.resolve import resolve_encoder

    return resolve_encoder(spec)


def load_ranker(ranker_dir: Path) -> Any:
    """Any ranker `dsr train ranker` or `dsr distill train` wrote (a `Reranker`)."""
    from dsr.reranker.load import load_reranker

    return load_reranker(Path(ranker_dir))


def open_vectors(sidecar: str) -> Any:
    """The sidecar: a local directory (loaded in-process) or an http(s) URL of `dsr sidecar serve`."""
    from dsr.sidecar import open_vector_index

    if not sidecar.startswith(("http://", "https://")) and not Path(sidecar).is_dir():
        raise VectorIndexError(f"sidecar directory {sidecar} does not exist")
    return open_vector_index(sidecar)


def open_item_records(sidecar: str) -> Any:
    """The item records `dsr ingest` keeps in a local sidecar directory, None for a remote sidecar or none."""
    from dsr.sidecar.items import ItemRecords

    if sidecar.startswith(("http://", "https://")):
        return None
    return ItemRecords.open_existing(Path(sidecar))


def connect_backend(settings: ServeSettings) -> Any:
    from dsr.backends import connect

    return connect(settings.connection)


def build_searcher(settings: ServeSettings, *, backend: Any = None) -> HybridSearcher:
    """The searcher `settings` describe. The vector side uses the sidecar (given, or the one `dsr ingest`
    wrote for this index), else the engine's own kNN on the embedding field; `--model none` turns it off."""
    if backend is None:
        backend = connect_backend(settings)
    if backend.flavor != "embedded":  # every search's requests to the cluster share one bound
        from dsr.backends.gated import GatedBackend

        backend = GatedBackend(backend, settings.max_cluster_requests)
    sidecar = settings.sidecar
    if sidecar is None:
        from dsr.sidecar import default_sidecar_dir

        default = default_sidecar_dir(settings.connection.data_dir, settings.index)
        sidecar = str(default) if default.is_dir() else None
    use_model = settings.model not in (None, "", "none")
    encoder = load_query_encoder(settings.model) if use_model else None  # type: ignore[arg-type]
    sidecar_index = open_vectors(sidecar) if sidecar and encoder is not None else None
    if encoder is not None and sidecar_index is not None:
        try:
            dim = sidecar_index.dim
        except VectorIndexError as e:  # a remote sidecar that is down now may be back later
            log.warning("cannot reach the sidecar to check its dimensions: %s", e)
            dim = encoder.dim
        if dim != encoder.dim:
            raise ModelFormatError(f"the query encoder ({settings.model}) gives {encoder.dim} dimensions but "
                                   f"the sidecar {sidecar} holds {dim}; serve with the --model used to ingest")
    ranker = load_ranker(settings.ranker_dir) if settings.ranker_dir else None
    records = open_item_records(sidecar) if sidecar and sidecar_index is not None and ranker is not None else None
    if encoder is None:
        log.warning("--model none: dsr searches are term-only (plus re-ranking if --ranker is given)")
    vectors: VectorReader | None = sidecar_index
    if encoder is not None and vectors is None and backend.flavor != "embedded":
        vectors = EngineVectors(backend, settings.index)  # the index's own embedding field
    return HybridSearcher(
        backend, settings.index, encoder, vectors, ranker,
        fusion=settings.fusion, term_k=settings.limits.default_k, knn_k=settings.limits.default_k,
        rerank_top=settings.limits.default_rerank_top, item_records=records,
    )
