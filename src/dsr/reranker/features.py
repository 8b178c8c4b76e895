"""The ranker's declared feature set for one (user, query, candidate).

Three groups, as in DPR: (1) numeric features — a declared list with a default each, shared by the
XGBoost baseline and the neural tower so the two compare on the same inputs; (2) the query's and
the item's text as hashed unigram + bigram ids (sum-pooled embeddings in the tower); (3) the user's
recent click stream as the ids of the clicked items, sum-pooled the same way. A missing or
non-numeric catalog value takes its declared default and a `has_*` flag says so; a final
finite-check is the last guard, so no NaN or infinity ever reaches a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from dsr.catalog import Item, item_text, numeric_field
from dsr.reranker.base import Candidate
from dsr.text import hashed_ngram_ids, stable_hash, tokenize


@dataclass(frozen=True)
class NumericFeature:
    name: str
    default: float
    doc: str


NUMERIC_FEATURES: tuple[NumericFeature, ...] = (
    NumericFeature("log_price", 0.0, "log1p(price); default when the row has no price"),
    NumericFeature("has_price", 0.0, "1 when the row has a price"),
    NumericFeature("price_rank", 0.5, "price rank among the candidates with a price, 0 cheapest .. 1 dearest"),
    NumericFeature("log_popularity", 0.0, "log1p of the catalog's popularity / sales / review count"),
    NumericFeature("has_popularity", 0.0, "1 when the row has a popularity figure"),
    NumericFeature("ctr", 0.0, "the catalog's past click-through rate"),
    NumericFeature("cvr", 0.0, "the catalog's past conversion rate"),
    NumericFeature("rating", 0.0, "the catalog's average rating"),
    NumericFeature("user_price_level", 0.0, "the user's price level, log1p scale (given, or mean of recent clicks)"),
    NumericFeature("has_user_price_level", 0.0, "1 when the user's price level is known"),
    NumericFeature("price_gap", 0.0, "|log_price - user_price_level| when both are known"),
    NumericFeature("bm25", 0.0, "first-stage term score"),
    NumericFeature("bm25_rel", 0.0, "term score / the best term score among the candidates"),
    NumericFeature("has_bm25", 0.0, "1 when the term stage scored the candidate"),
    NumericFeature("dsr", 0.0, "first-stage DSR similarity (query-item dot product)"),
    NumericFeature("has_dsr", 0.0, "1 when the DSR similarity is known"),
    NumericFeature("log_fused_rank", 0.0, "log1p of the 0-based rank after fusion"),
    NumericFeature("fused_rr", 1.0, "1 / (1 + fused rank)"),
    NumericFeature("title_overlap", 0.0, "share of query tokens in the title, dsr.text.term_overlap (cross feature)"),
    NumericFeature("text_overlap", 0.0, "share of query tokens in title + brand + category (cross feature)"),
    NumericFeature("log_bm25_rank", 0.0, "log1p of the 0-based rank by term score among the candidates "
                   "(the unscored after the scored)"),
    NumericFeature("bm25_z", 0.0, "term score in standard deviations from the candidates' mean (0 unscored)"),
    NumericFeature("log_dsr_rank", 0.0, "log1p of the 0-based rank by DSR similarity among the candidates "
                   "(the unknown after the known)"),
    NumericFeature("dsr_gap", 0.0, "the best DSR similarity among the candidates minus this one's"),
    NumericFeature("dsr_z", 0.0, "DSR similarity in standard deviations from the candidates' mean (0 unknown)"),
    NumericFeature("log_sales_rank", 0.0, "log1p of the catalog's sales rank (1 = best seller)"),
    NumericFeature("has_sales_rank", 0.0, "1 when the row has a sales rank"),
    NumericFeature("popularity_rank", 0.5, "rank among the candidates by sales rank (where two have one), else "
                   "by popularity, 0 most popular .. 1 least"),
    NumericFeature("query_terms", 0.0, "log1p of the number of query tokens"),
    NumericFeature("clicked_before", 0.0, "1 when the candidate is among the user's recent clicks"),
    NumericFeature("log_history", 0.0, "log1p of the number of the user's recent clicks"),
)
NUMERIC_NAMES: tuple[str, ...] = tuple(f.name for f in NUMERIC_FEATURES)
NUMERIC_DEFAULTS: Mapping[str, float] = {f.name: f.default for f in NUMERIC_FEATURES}
_DEFAULTS = np.array([f.default for f in NUMERIC_FEATURES], dtype=np.float64)
_C: Mapping[str, int] = {name: k for k, name in enumerate(NUMERIC_NAMES)}  # column of each feature

PAD = 0


@dataclass(frozen=True)
class FeatureConfig:
    """What the extractor reads; saved with every model so serving extracts exactly the same."""

    buckets: int = 1 << 16
    query_len: int = 16
    item_len: int = 32
    click_depth: int = 5
    item_id_hash: bool = False  # add a per-item id bucket (memorises items; off: text only)
    popularity_fields: tuple[str, ...] = ("popularity", "sales", "sales_volume", "review_count")
    sales_rank_fields: tuple[str, ...] = ("sales_rank", "sales_rank_long_term", "salesrank", "sales_rank_short_term")
    rating_fields: tuple[str, ...] = ("rating", "review_average")
    ctr_field: str = "ctr"
    cvr_field: str = "cvr"
    numeric: tuple[str, ...] = field(default=NUMERIC_NAMES)

    def to_config(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> FeatureConfig:
        args: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
        return cls(**args)

    @property
    def click_len(self) -> int:
        return self.click_depth * self.item_len

    @property
    def item_fields(self) -> tuple[str, ...]:
        """Every catalog field the extractor reads from an item (besides its id)."""
        return ("title", "brand", "category", "price", *self.popularity_fields, *self.sales_rank_fields,
                *self.rating_fields, self.ctr_field, self.cvr_field)


@dataclass(frozen=True)
class GroupFeatures:
    """Features of one query's candidates: numeric [n, F] plus padded id matrices."""

    numeric: np.ndarray  # float32 [n, F]
    query_ids: np.ndarray  # int64 [query_len]
    item_ids: np.ndarray  # int64 [n, item_len + 1]
    click_ids: np.ndarray  # int64 [click_len]
    click_cross: np.ndarray  # float32 [n, 2]: click-stream cross features (neural model only)


def _first_finite(item: Item, names: Sequence[str]) -> float:
    """The first of `names` holding a finite number, NaN when none does."""
    for name in names:
        if item.get(name) is not None:  # most catalogs have few of the fields asked for: skip the parse
            out = numeric_field(item, name, math.nan)
            if math.isfinite(out):
                return out
    return math.nan


def _rank_among(scores: np.ndarray) -> np.ndarray:
    """0-based rank of each score, highest first; ties share the best rank, NaNs come after every score."""
    known = np.isfinite(scores)
    out = np.full(len(scores), float(known.sum()))
    if known.any():
        desc = np.sort(-scores[known])
        out[known] = np.searchsorted(desc, -scores[known], side="left")
    return out


def _z(values: np.ndarray) -> np.ndarray:
    """Standard scores within one query's candidates (all 0 when they do not vary)."""
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-9 else np.zeros_like(values)


class FeatureExtractor:
    """Turns (query, candidates, user) into `GroupFeatures`; item ids are cached per item."""

    def __init__(self, config: FeatureConfig | None = None, catalog: Mapping[str, Item] | None = None):
        self.config = config or FeatureConfig()
        unknown = set(self.config.numeric) - set(NUMERIC_NAMES)
        if unknown:
            raise ValueError(f"unknown numeric features {sorted(unknown)}; declared: {list(NUMERIC_NAMES)}")
        self.catalog = catalog or {}
        self._cols = [NUMERIC_NAMES.index(n) for n in self.config.numeric]
        self._item_ids = lru_cache(maxsize=200_000)(self._item_ids_uncached)
        self._tokens = lru_cache(maxsize=400_000)(lambda text: frozenset(tokenize(text)))

    # -- ids ---------------------------------------------------------------------------------
    def _item_ids_uncached(self, text: str) -> tuple[int, ...]:
        return tuple(hashed_ngram_ids(text, self.config.buckets)[: self.config.item_len])

    def item_text_ids(self, item: Item) -> tuple[int, ...]:
        return self._item_ids(item_text(item))

    def item_ids(self, item: Item, text: str | None = None) -> tuple[int, ...]:
        """Text ids, after the item's own id bucket when `item_id_hash` is on."""
        ids = self._item_ids(item_text(item) if text is None else text)
        if self.config.item_id_hash:
            return (stable_hash("id:" + str(item.get("id", "")), self.config.buckets), *ids)
        return ids

    def query_ids(self, query: str) -> np.ndarray:
        out = np.full(self.config.query_len, PAD, dtype=np.int64)
        ids = hashed_ngram_ids(query, self.config.buckets)[: self.config.query_len]
        out[: len(ids)] = ids
        return out

    def recent_items(self, user: Mapping[str, Any] | None) -> list[Item]:
        """The user's recent clicks as items: ids resolved through the catalog, mappings as given."""
        out: list[Item] = []
        for entry in (user or {}).get("recent_clicks", ())[: self.config.click_depth]:
            if isinstance(entry, Mapping):
                out.append(entry)
            else:
                out.append(self.catalog.get(str(entry), {"id": str(entry)}))
        return out

    def click_ids(self, recent: Sequence[Item]) -> np.ndarray:
        out = np.full(self.config.click_len, PAD, dtype=np.int64)
        # text only: item-id buckets would turn the stream into a per-session fingerprint
        flat = [i for item in recent for i in self.item_text_ids(item)][: self.config.click_len]
        out[: len(flat)] = flat
        return out

    # -- numeric -----------------------------------------------------------------------------
    def user_price_level(self, user: Mapping[str, Any] | None, recent: Sequence[Item]) -> float | None:
        given = (user or {}).get("price_level")
        if isinstance(given, int | float) and not isinstance(given, bool) and math.isfinite(given):
            return float(given)
        prices = [numeric_field(it, "price", math.nan) for it in recent]
        prices = [math.log1p(p) for p in prices if math.isfinite(p) and p >= 0]
        return sum(prices) / len(prices) if prices else None

    def numeric(self, query: str, candidates: Sequence[Candidate], user: Mapping[str, Any] | None,
                recent: Sequence[Item], texts: Sequence[str] | None = None) -> np.ndarray:
        """[n, F] numeric features; `texts` are the candidates' `item_text`s when already at hand.

        Column-wise: one pass reads each candidate's raw values, numpy does the transforms. This
        runs for every request on the serving path (100 candidates), so no per-cell dict lookups.
        """
        cfg = self.config
        texts = texts if texts is not None else [item_text(c.item) for c in candidates]
        n = len(candidates)
        rows = np.tile(_DEFAULTS, (n, 1))
        if n == 0:
            return rows[:, self._cols].astype(np.float32)
        items = [c.item for c in candidates]
        price = np.array([numeric_field(it, "price", math.nan) for it in items])
        pop = np.array([_first_finite(it, cfg.popularity_fields) for it in items])
        for column, fields in ((_C["ctr"], (cfg.ctr_field,)), (_C["cvr"], (cfg.cvr_field,)),
                               (_C["rating"], cfg.rating_fields)):
            values = np.array([_first_finite(it, fields) for it in items])
            known = np.isfinite(values)
            rows[known, column] = values[known]
        with np.errstate(invalid="ignore"):
            priced = np.isfinite(price) & (price >= 0)
            popular = np.isfinite(pop) & (pop >= 0)
        log_price = np.log1p(np.where(priced, price, 0.0))
        rows[priced, _C["log_price"]] = log_price[priced]
        rows[priced, _C["has_price"]] = 1.0
        finite_prices = np.sort(price[np.isfinite(price)])
        if len(finite_prices) > 1:
            rank = np.searchsorted(finite_prices, price[priced], side="left") / (len(finite_prices) - 1)
            rows[priced, _C["price_rank"]] = rank
        level = self.user_price_level(user, recent)
        if level is not None:
            rows[priced, _C["price_gap"]] = np.abs(log_price[priced] - level)
            rows[:, _C["user_price_level"]] = level
            rows[:, _C["has_user_price_level"]] = 1.0
        if recent:
            seen = {str(it.get("id")) for it in recent}
            rows[:, _C["clicked_before"]] = [str(it.get("id")) in seen for it in items]
            rows[:, _C["log_history"]] = math.log1p(len(recent))
        rows[popular, _C["log_popularity"]] = np.log1p(pop[popular])
        rows[popular, _C["has_popularity"]] = 1.0

        sales_rank = np.array([_first_finite(it, cfg.sales_rank_fields) for it in items])
        with np.errstate(invalid="ignore"):
            ranked = np.isfinite(sales_rank) & (sales_rank >= 0)
        rows[ranked, _C["log_sales_rank"]] = np.log1p(sales_rank[ranked])
        rows[ranked, _C["has_sales_rank"]] = 1.0
        # popularity among the candidates: by sales rank where two have one, else by the popularity figure
        standing = np.where(ranked, sales_rank, np.nan) if ranked.sum() > 1 else np.where(popular, -pop, np.nan)
        known = np.isfinite(standing)
        if known.sum() > 1:
            order = np.sort(standing[known])
            rows[known, _C["popularity_rank"]] = np.searchsorted(order, standing[known]) / (known.sum() - 1)

        bm25 = np.array([np.nan if c.bm25 is None else c.bm25 for c in candidates], dtype=np.float64)
        scored = np.isfinite(bm25)
        if scored.any():
            best = float(bm25[scored].max())
            rows[scored, _C["bm25"]] = bm25[scored]
            rows[scored, _C["has_bm25"]] = 1.0
            rows[scored, _C["bm25_rel"]] = bm25[scored] / best if best > 0 else 0.0
            rows[scored, _C["bm25_z"]] = _z(bm25[scored])
        rows[:, _C["log_bm25_rank"]] = np.log1p(_rank_among(bm25))
        dsr = np.array([np.nan if c.dsr is None else c.dsr for c in candidates], dtype=np.float64)
        similar = np.isfinite(dsr)
        rows[similar, _C["dsr"]] = dsr[similar]
        rows[similar, _C["has_dsr"]] = 1.0
        rows[:, _C["log_dsr_rank"]] = np.log1p(_rank_among(dsr))
        if similar.any():
            known_dsr = dsr[similar]
            rows[similar, _C["dsr_z"]] = _z(known_dsr)
            gap = float(known_dsr.max()) - known_dsr
            rows[similar, _C["dsr_gap"]] = gap
            rows[~similar, _C["dsr_gap"]] = float(gap.max())
        rank0 = np.array([max(0, int(c.fused_rank)) for c in candidates], dtype=np.float64)
        rows[:, _C["log_fused_rank"]] = np.log1p(rank0)
        rows[:, _C["fused_rr"]] = 1.0 / (1.0 + rank0)

        q_tokens = set(tokenize(query))
        rows[:, _C["query_terms"]] = math.log1p(len(q_tokens))
        if q_tokens:  # term_overlap, with the item's tokens cached
            tokens = self._tokens
            rows[:, _C["title_overlap"]] = [len(q_tokens & tokens(str(it.get("title") or ""))) for it in items]
            rows[:, _C["text_overlap"]] = [len(q_tokens & tokens(text)) for text in texts]
            rows[:, [_C["title_overlap"], _C["text_overlap"]]] /= len(q_tokens)
        rows = np.where(np.isfinite(rows), rows, _DEFAULTS)  # the last guard: never NaN/inf
        return rows[:, self._cols].astype(np.float32)

    def click_cross(self, candidates: Sequence[Candidate], recent: Sequence[Item],
                    texts: Sequence[str] | None = None) -> np.ndarray:
        """Per candidate: share of its tokens found in the recent clicks, share of clicks of its brand.

        Part of the click-stream group (not the numeric set the XGBoost baseline reads): the
        hand-made counterpart of the pooled click embeddings, 0 without a click history.
        """
        out = np.zeros((len(candidates), 2), dtype=np.float32)
        if not recent:
            return out
        seen: set[str] = set()
        for it in recent:
            seen |= self._tokens(item_text(it))
        brands = [str(it.get("brand") or "").lower() for it in recent]
        texts = texts if texts is not None else [item_text(c.item) for c in candidates]
        for r, (c, text) in enumerate(zip(candidates, texts, strict=True)):
            toks = self._tokens(text)
            if toks:
                out[r, 0] = len(toks & seen) / len(toks)
            brand = str(c.item.get("brand") or "").lower()
            if brand:
                out[r, 1] = sum(b == brand for b in brands) / len(recent)
        return out

    # -- all ---------------------------------------------------------------------------------
    def extract(self, query: str, candidates: Sequence[Candidate],
                user: Mapping[str, Any] | None = None) -> GroupFeatures:
        cfg = self.config
        recent = self.recent_items(user)
        texts = [item_text(c.item) for c in candidates]  # built once, read by every group
        item_ids = np.full((len(candidates), cfg.item_len + 1), PAD, dtype=np.int64)
        for r, (c, text) in enumerate(zip(candidates, texts, strict=True)):
            ids = self.item_ids(c.item, text)
            item_ids[r, : len(ids)] = ids
        return GroupFeatures(
            numeric=self.numeric(query, candidates, user, recent, texts),
            query_ids=self.query_ids(query),
            item_ids=item_ids,
            click_ids=self.click_ids(recent),
            click_cross=self.click_cross(candidates, recent, texts),
        )
