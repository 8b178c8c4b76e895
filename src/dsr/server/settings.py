"""Settings of `dsr serve` (and of `dsr search`, which builds the same searcher)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dsr.search.fusion import FusionConfig
from dsr.server.dsr_request import Limits
from dsr.server.serve_config import ServedEntry
from dsr.settings import ConnectionSettings


@dataclass(frozen=True)
class ServeSettings:
    """Where the cluster is, which index and models to serve, and the server's own limits."""

    connection: ConnectionSettings
    index: str
    model: str | None = "minilm"  # as `dsr ingest --model`: a model dir, 'minilm', 'hashing[:DIM]'; None -> term only
    ranker_dir: Path | None = None  # Siamese ranker; None -> fused order
    sidecar: str | None = None  # directory or http(s) URL; None -> DATA_DIR/sidecar/INDEX if present, else engine kNN
    host: str = "127.0.0.1"
    port: int = 9400
    max_body_bytes: int = 100 * 1024 * 1024  # Elasticsearch's default http.max_content_length
    upstream_timeout_s: float = 120.0
    # hybrid searches: cluster requests in flight at most (and searches running at once), searches waiting
    # beyond them (one more is answered 429)
    max_cluster_requests: int = 8
    max_queued_searches: int = 100
    # how long what `index` (an alias) and a search's target stand for is kept before the cluster is asked again
    resolve_ttl_s: float = 5.0
    # how often the served sidecar takes up what other processes (replicas, `dsr sync`) wrote to its journal
    reload_s: float = 1.0
    limits: Limits = field(default_factory=Limits)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    # the indexes answered hybrid (`dsr serve --config`); empty: the one `index` above, as the flags say
    entries: tuple[ServedEntry, ...] = ()
    hybrid_by_default: bool = False  # `--hybrid-by-default`: the one `index` answers plain searches hybrid
    judgments: Path | None = None  # the relevance workbench's judgments at start (`--judgments`, formats of dsr eval)

    def served_entries(self) -> tuple[ServedEntry, ...]:
        """The configured entries; without a configuration file, the one `index` the flags describe."""
        if self.entries:
            return self.entries
        return (ServedEntry(name=self.index, hybrid=self.hybrid_by_default, model=self.model,
                            ranker=self.ranker_dir, sidecar=self.sidecar, k=self.limits.default_k,
                            term_k=self.limits.default_k, rerank_top=self.limits.default_rerank_top,
                            fusion=self.fusion),)

    def for_entry(self, entry: ServedEntry) -> ServeSettings:
        """These settings with the index, models, vector side and defaults of one configured entry."""
        return replace(self, index=entry.name, model=entry.model, ranker_dir=entry.ranker, sidecar=entry.sidecar,
                       fusion=entry.fusion, entries=())

    @property
    def embedded(self) -> bool:
        return self.connection.is_embedded
