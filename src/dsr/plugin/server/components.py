"""Build a `HybridSearcher` from paths and URLs, loading each model and client exactly once.

Shared by `dsr serve` and `dsr search`. Heavy modules (torch, faiss, engine clients) are imported
here, lazily, so importing the server package stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dsr.errors import ModelFormatError, UsageError, VectorIndexError
from dsr.plugin.hybrid import HybridSearcher
from dsr.plugin.server.settings import ServeSettings

log = logging.getLogger(__name__)


def load_query_encoder(model_dir: Path) -> Any:
    """The query side of a trained two-tower model directory (an `Encoder`)."""
    import dsr.encoders as encoders

    loader = getattr(encoders, "load_encoder", None)
    if loader is None:
        raise ModelFormatError(f"cannot load {model_dir}: this build of dsr has no two-tower model loader")
    return loader(Path(model_dir))


def load_ranker(ranker_dir: Path) -> Any:
    """The Siamese pairwise ranker saved by `dsr train ranker` (a `Reranker`)."""
    from dsr.reranker.siamese import SiameseRanker

    return SiameseRanker.load(Path(ranker_dir))


def open_vectors(sidecar: str) -> Any:
    """The sidecar: a local directory (loaded in-process) or an http(s) URL of `dsr sidecar serve`."""
    from dsr.sidecar import open_vector_index

    if not sidecar.startswith(("http://", "https://")) and not Path(sidecar).is_dir():
        raise VectorIndexError(f"sidecar directory {sidecar} does not exist")
    return open_vector_index(sidecar)


def connect_backend(settings: ServeSettings) -> Any:
    from dsr.plugin.backends import connect

    return connect(settings.connection)


def build_searcher(settings: ServeSettings, *, backend: Any = None) -> HybridSearcher:
    """The searcher `settings` describe. Without a model the vector side is off (term-only, said so);
    with a model but no sidecar, the engine's own kNN on the embedding field is used."""
    if backend is None:
        backend = connect_backend(settings)
    encoder = load_query_encoder(settings.model_dir) if settings.model_dir else None
    vectors = open_vectors(settings.sidecar) if settings.sidecar else None
    if vectors is not None and encoder is None:
        raise UsageError("--sidecar needs --model: the query tower that matches the sidecar's vectors")
    if encoder is not None and vectors is not None:
        try:
            dim = vectors.dim
        except VectorIndexError as e:  # a remote sidecar that is down now may be back later
            log.warning("cannot reach the sidecar to check its dimensions: %s", e)
            dim = encoder.dim
        if dim != encoder.dim:
            raise ModelFormatError(f"the model's vectors have {encoder.dim} dimensions but the sidecar "
                                   f"holds {dim}; they were not built together")
    ranker = load_ranker(settings.ranker_dir) if settings.ranker_dir else None
    if encoder is None:
        log.warning("no --model given: dsr searches are term-only (plus re-ranking if --ranker is given)")
    return HybridSearcher(
        backend, settings.index, encoder, vectors, ranker,
        engine_knn=encoder is not None and vectors is None and backend.flavor != "embedded",
        fusion=settings.fusion, term_k=settings.limits.default_k, knn_k=settings.limits.default_k,
        rerank_top=settings.limits.default_rerank_top,
    )
