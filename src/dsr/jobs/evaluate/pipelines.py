"""The pipelines `dsr eval` compares: each a named configuration of the code the product serves.

A small registry maps a name to a builder. Builders share one `EvalContext`, which creates each
expensive resource once (the backend connection, the evaluation index, MiniLM item vectors, the trained
towers and their sidecar) and reuses it across pipelines. A pipeline whose model directory does not
exist raises `PipelineUnavailable` naming what is missing, before any work starts.

Every pipeline returns, per query, its ranked ids as a run `{id: score}` whose scores are derived
from the rank (n, n-1, ...): ranx orders by score, and a re-ranked head followed by a fused tail (or
BM25 ties) must keep exactly the order the pipeline produced.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dsr.backends import IndexSpec, SearchBackend, connect
from dsr.catalog import Item, item_text
from dsr.encoders.base import Encoder, UserContext
from dsr.errors import EngineError, UsageError
from dsr.eval.dataset import EvalDataset
from dsr.reranker import Reranker, load_reranker
from dsr.search.fusion import FusionConfig, FusionMode, fuse
from dsr.search.hybrid import HybridSearcher
from dsr.settings import ConnectionSettings

if TYPE_CHECKING:
    from dsr.encoders.backbone import MiniLMEncoder
    from dsr.encoders.model import TwoTowerModel
    from dsr.sidecar.faiss_index import FaissIndex
RunDict = dict[str, dict[str, float]]


class PipelineUnavailable(UsageError):
    """A requested pipeline cannot be built here; the message names the missing piece."""


def ranked_run(ids: Iterable[str]) -> dict[str, float]:
    """Ids in rank order as a ranx run: score n for the first, n-1 for the next, duplicates dropped."""
    unique = list(dict.fromkeys(ids))
    n = len(unique)
    return {doc: float(n - i) for i, doc in enumerate(unique)}


def rrf_lists(lists: Sequence[Sequence[str]], *, k: int = 60) -> list[str]:
    """Reciprocal rank fusion of ranked id lists, through the product's own fusion code."""
    fused = fuse(
        {f"list{i}": [(d, 0.0) for d in ids] for i, ids in enumerate(lists)},
        FusionConfig(mode=FusionMode.RRF, rrf_k=k),
    )
    return [f.id for f in fused]


class Pipeline(Protocol):
    name: str
    label: str  # what actually ran, e.g. the engine-hybrid fallback and its reason

    def search(self, queries: Sequence[str], k: int) -> RunDict: ...



def _progress(queries: Sequence[Any], desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(queries, desc=desc, unit="q", disable=not enabled, leave=False)


class EvalContext:
    """Shared, lazily built resources of one evaluation run on one dataset."""

    def __init__(
        self,
        dataset: EvalDataset,
        settings: ConnectionSettings,
        *,
        model_dir: Path | None = None,
        ranker_dir: Path | None = None,
        with_vectors: bool = True,
        reindex: bool = False,
        progress: bool = True,
        num_candidates: int = 200,
        index_prefix: str = "dsr-eval",
        backend: Any = None,
    ) -> None:
        self.dataset = dataset
        self.settings = settings
        self.model_dir = Path(model_dir) if model_dir else None
        self.ranker_dir = Path(ranker_dir) if ranker_dir else None
        self.with_vectors = with_vectors
        self.reindex = reindex
        self.progress = progress
        self.num_candidates = num_candidates
        self.index_prefix = index_prefix
        self.notes: list[str] = []
        if backend is not None:
            self.__dict__["backend"] = backend  # an already connected SearchBackend (tests, services)

    # -- catalog ---------------------------------------------------------------------------------
    @cached_property
    def items(self) -> list[Item]:
        return list(self.dataset.items())

    @cached_property
    def catalog_key(self) -> str:
        return self.dataset.catalog_fingerprint()

    @cached_property
    def titles(self) -> dict[str, str]:
        return {str(it["id"]): str(it.get("title") or "") for it in self.items}

    @property
    def cache_dir(self) -> Path:
        return Path(self.settings.data_dir) / "cache" / "embeddings"

    # -- engine ----------------------------------------------------------------------------------
    @cached_property
    def backend(self) -> SearchBackend:
        return connect(self.settings)

    @cached_property
    def untuned_encoder(self) -> MiniLMEncoder:
        from dsr.encoders.backbone import MiniLMEncoder  # torch and sentence-transformers: loaded when used

        return MiniLMEncoder()

    @cached_property
    def untuned_item_vectors(self) -> np.ndarray:
        """MiniLM vectors of the catalog's item texts, through a resumable per-text cache.

        `{data_dir}/cache/texts` is this evaluation's own cache; `{data_dir}/cache/bench` and the folders
        in `$DSR_TEXT_CACHE` (os.pathsep-separated) are read when present, so titles a benchmark already
        encoded are not encoded again.
        """
        from dsr.encoders.embed_cache import SharedTextCache, text_embeddings

        data = Path(self.settings.data_dir) / "cache"
        extra = [Path(p) for p in os.environ.get("DSR_TEXT_CACHE", "").split(os.pathsep) if p]
        shared = SharedTextCache([data / "bench", *extra])
        encoder = self.untuned_encoder
        # last item first: a benchmark filling the shared cache from the first item meets us halfway
        texts = [item_text(it) for it in reversed(self.items)]
        vectors = text_embeddings(
            encoder.encode_texts,
            texts,
            dim=encoder.dim,
            cache_dir=data / "texts",
            shared=shared,
            progress=self.progress,
            desc="MiniLM item vectors",
        )
        return vectors[::-1].copy()

    @cached_property
    def index(self) -> str:
        """The evaluation index of this catalog (with MiniLM vectors when a vector pipeline runs).

        Named after the dataset, the catalog hash and the vector model, so a later run reuses it when it
        holds every item, and never mixes catalogs.
        """
        suffix = "minilm" if self.with_vectors else "text"
        name = f"{self.index_prefix}-{self.dataset.name}-{self.catalog_key}-{suffix}".lower()
        backend = self.backend
        if not self.reindex and backend.index_exists(name) and backend.count(name) == len(self.items):
            return name
        if backend.index_exists(name):
            backend.delete_index(name)
        vectors = self.untuned_item_vectors if self.with_vectors else None
        backend.ensure_index(IndexSpec(name, dims=int(vectors.shape[1]) if vectors is not None else None))
        self._bulk(name, vectors)
        backend.refresh(name)
        return name

    def _bulk(self, name: str, vectors: np.ndarray | None, chunk: int = 500) -> None:
        from tqdm import tqdm

        failures = []
        with tqdm(
            total=len(self.items), desc=f"indexing {name}", unit="doc", disable=not self.progress, leave=False
        ) as bar:
            for start in range(0, len(self.items), chunk):
                docs = []
                for offset, item in enumerate(self.items[start : start + chunk]):
                    # empty strings (e.g. missing release dates) would break dynamic date mappings
                    doc = {k: v for k, v in item.items() if v is not None and v != ""}
                    doc["id"] = str(item["id"])
                    if vectors is not None:
                        doc["embedding"] = vectors[start + offset].tolist()
                    docs.append(doc)
                result = self.backend.bulk_upsert(name, docs)
                failures.extend(result.failed)
                bar.update(len(docs))
        if failures:
            first = "; ".join(f"{f.id}: {f.reason}" for f in failures[:3])
            raise EngineError(
                f"{len(failures)} of {len(self.items)} documents were not indexed into {name} (first: {first})"
            )

    # -- trained models --------------------------------------------------------------------------
    def _model_path(self, given: Path | None, sub: str, what: str, option: str, train_cmd: str) -> Path:
        path = given or Path(self.settings.data_dir) / "models" / self.dataset.name / sub
        if not is_model_dir(path):
            raise PipelineUnavailable(
                f"{what} needs a trained model directory: none at {path} "
                f"(pass {option} DIR; train one with `{train_cmd}`)"
            )
        return path

    @cached_property
    def trained_encoder(self) -> TwoTowerModel:
        from dsr.encoders.model import TwoTowerModel

        path = self._model_path(self.model_dir, "retrieval", "the dsr pipelines", "--model", "dsr train retrieval")
        return TwoTowerModel.load(path)

    @cached_property
    def sidecar(self) -> FaissIndex:
        """A FAISS sidecar (exact, Flat) of the trained item tower's vectors, as `dsr ingest` builds it."""
        from dsr.encoders.embed_cache import item_embeddings, model_dir_key
        from dsr.sidecar.faiss_index import FaissIndex

        encoder: Encoder = self.trained_encoder
        model_path = self.model_dir or Path(self.settings.data_dir) / "models" / self.dataset.name / "retrieval"
        features = getattr(getattr(encoder, "config", None), "features", None)
        if getattr(features, "backbone", None) == "minilm" and not getattr(features, "backbone_tuned", False):
            # the towers read (untuned) MiniLM vectors as an input: reuse the cached ones, no re-encoding
            encoder = _WithBackbone(encoder, self.items, self.untuned_item_vectors)
        vectors = item_embeddings(
            encoder,
            self.items,
            model_key=f"dsr-{model_dir_key(model_path)}",
            catalog_key=self.catalog_key,
            cache_dir=self.cache_dir,
            progress=self.progress,
            desc="DSR item vectors",
        )
        index = FaissIndex(int(vectors.shape[1]), kind="flat", device="cpu")
        index.upsert([str(it["id"]) for it in self.items], vectors)
        return index

    @cached_property
    def reranker(self) -> Reranker:
        path = self._model_path(self.ranker_dir, "ranker", "hybrid+rerank", "--ranker", "dsr train ranker")
        return load_reranker(path, catalog={str(it["id"]): it for it in self.items})


def is_model_dir(path: Path) -> bool:
    """A dsr model directory, or the output of `dsr train ranker` (siamese/ and xgboost/ inside)."""
    return (path / "config.json").is_file() or (path / "siamese" / "config.json").is_file()




class _WithBackbone:
    """A trained model's item side fed with precomputed (cached) backbone vectors of the same items."""

    def __init__(self, model: Any, items: Sequence[Item], backbone: np.ndarray) -> None:
        self.model = model
        self.dim = model.dim
        self.row = {str(it["id"]): i for i, it in enumerate(items)}
        self.backbone = backbone

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        rows = [self.row[str(it["id"])] for it in items]
        return self.model.encode_items(items, backbone=self.backbone[rows])

    def encode_queries(self, texts: Sequence[str], users: Sequence[UserContext | None] | None = None) -> np.ndarray:
        return self.model.encode_queries(texts, users)


# -- pipelines -------------------------------------------------------------------------------------


class Bm25Pipeline:
    name = "bm25"

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.index = ctx.index
        self.label = f"BM25 ({ctx.backend.flavor})"

    def search(self, queries: Sequence[str], k: int) -> RunDict:
        backend = self.ctx.backend
        return {
            q: ranked_run(h.id for h in backend.term_search(self.index, q, size=k))
            for q in _progress(queries, self.name, self.ctx.progress)
        }


class KnnUntunedPipeline:
    name = "knn-untuned"

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.index = ctx.index
        self.label = f"MiniLM untuned, {ctx.backend.flavor} kNN"
        ctx.untuned_encoder.encode_queries(["warm up"])  # model loading counts as preparation, not query time

    def search(self, queries: Sequence[str], k: int) -> RunDict:
        backend = self.ctx.backend
        vectors = self.ctx.untuned_encoder.encode_queries(list(queries))
        return {
            q: ranked_run(
                h.id
                for h in backend.knn_search(self.index, vectors[i], k=k, num_candidates=max(k, self.ctx.num_candidates))
            )
            for i, q in enumerate(_progress(queries, self.name, self.ctx.progress))
        }


class EngineHybridPipeline:
    """The engine's own BM25 + kNN fusion on the untuned vectors; client-side RRF where it has none."""

    name = "engine-hybrid"

    def __init__(self, ctx: EvalContext) -> None:
        from dsr.jobs.evaluate.engine_fusion import EngineFusion, FusionSupport

        self.ctx = ctx
        self.index = ctx.index
        self.fusion: EngineFusion | None = None
        flavor = ctx.backend.flavor
        if flavor in ("elasticsearch", "opensearch"):
            self.fusion = EngineFusion(ctx.settings, flavor, self.index)
            probe_vec = ctx.untuned_encoder.encode_queries(["probe"])[0]
            self.support = self.fusion.probe("probe", probe_vec)
        else:
            self.support = FusionSupport("client-rrf", f"the {flavor} backend has no native hybrid search")
        if self.support.native:
            self.label = f"engine-hybrid: {self.support.reason}"
        else:
            self.label = (
                f"engine-hybrid = client-side RRF (k=60) of {flavor} BM25 top-k and {flavor} kNN top-k; "
                f"{self.support.reason}"
            )
        ctx.notes.append(self.label)

    def search(self, queries: Sequence[str], k: int) -> RunDict:
        backend = self.ctx.backend
        vectors = self.ctx.untuned_encoder.encode_queries(list(queries))
        nc = max(k, self.ctx.num_candidates)
        out: RunDict = {}
        for i, q in enumerate(_progress(queries, self.name, self.ctx.progress)):
            if self.support.native and self.fusion is not None:
                out[q] = ranked_run(self.fusion.search(self.support, q, vectors[i], k, nc))
                continue
            term = [h.id for h in backend.term_search(self.index, q, size=k)]
            knn = [h.id for h in backend.knn_search(self.index, vectors[i], k=k, num_candidates=nc)]
            out[q] = ranked_run(rrf_lists([term, knn])[:k])
        return out


class DsrPipeline:
    """Trained towers: the query tower against the FAISS sidecar of the item tower's vectors."""

    name = "dsr"

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.encoder = ctx.trained_encoder
        self.sidecar = ctx.sidecar
        self.label = "DSR trained towers, FAISS sidecar (exact)"

    def search(self, queries: Sequence[str], k: int) -> RunDict:
        vectors = self.encoder.encode_queries(list(queries))
        out: RunDict = {}
        for start in _progress(range(0, len(queries), 256), self.name, self.ctx.progress):
            _, ids = self.sidecar.search(vectors[start : start + 256], k)
            for q, row in zip(queries[start : start + 256], ids, strict=True):
                out[q] = ranked_run(row)
        return out


class HybridPipeline:
    """The product's `HybridSearcher`: cluster BM25 + DSR sidecar neighbours, fused, optionally re-ranked."""

    def __init__(self, ctx: EvalContext, name: str, mode: str, rerank: bool) -> None:
        self.ctx = ctx
        self.name = name
        self.rerank = rerank
        self.searcher = HybridSearcher(
            ctx.backend,
            ctx.index,
            ctx.trained_encoder,
            ctx.sidecar,
            ctx.reranker if rerank else None,
            fusion=FusionConfig(mode=FusionMode(mode)),
        )
        self.label = f"HybridSearcher: {ctx.backend.flavor} BM25 + DSR sidecar, {mode} fusion" + (
            ", Siamese re-rank of the top 100" if rerank else ""
        )

    def search(self, queries: Sequence[str], k: int) -> RunDict:
        return {
            q: ranked_run(h.id for h in self.searcher.search(q, size=k, rerank=self.rerank))
            for q in _progress(queries, self.name, self.ctx.progress)
        }


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    description: str
    build: Callable[[EvalContext], Pipeline]
    needs_vectors: bool = False  # the untuned MiniLM embedding in the engine index


REGISTRY: dict[str, PipelineSpec] = {
    spec.name: spec
    for spec in (
        PipelineSpec("bm25", "the engine's BM25 (multi_match) — the baseline", Bm25Pipeline),
        PipelineSpec("knn-untuned", "off-the-shelf MiniLM embeddings, the engine's own kNN", KnnUntunedPipeline, True),
        PipelineSpec(
            "engine-hybrid",
            "the engine's own BM25 + kNN fusion on the untuned embeddings",
            EngineHybridPipeline,
            True,
        ),
        PipelineSpec("dsr", "trained DSR towers, FAISS sidecar", DsrPipeline),
        PipelineSpec(
            "hybrid-rrf",
            "HybridSearcher: BM25 + DSR, RRF",
            lambda c: HybridPipeline(c, "hybrid-rrf", "rrf", False),
        ),
        PipelineSpec(
            "hybrid-linear",
            "HybridSearcher: BM25 + DSR, min-max linear",
            lambda c: HybridPipeline(c, "hybrid-linear", "linear", False),
        ),
        PipelineSpec(
            "hybrid+rerank",
            "HybridSearcher: BM25 + DSR, RRF, pairwise re-rank of the top 100",
            lambda c: HybridPipeline(c, "hybrid+rerank", "rrf", True),
        ),
    )
}


def parse_pipelines(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise UsageError(f"unknown pipeline(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(REGISTRY)}")
    return list(dict.fromkeys(names))
