"""Item embeddings are cached on disk per model and catalog, and reused only when both match."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsr.encoders.embed_cache import item_embeddings, model_dir_key
from dsr.encoders.hashing import HashingEncoder


class CountingEncoder(HashingEncoder):
    def __init__(self) -> None:
        super().__init__(16)
        self.calls = 0

    def encode_items(self, items):  # type: ignore[override]
        self.calls += 1
        return super().encode_items(items)


ITEMS = [{"id": str(i), "title": f"product {i} widget"} for i in range(10)]


def test_second_call_reads_the_cache(tmp_path: Path) -> None:
    enc = CountingEncoder()
    first = item_embeddings(
        enc, ITEMS, model_key="m", catalog_key="c", cache_dir=tmp_path, batch_size=4, progress=False
    )
    calls = enc.calls
    second = item_embeddings(enc, ITEMS, model_key="m", catalog_key="c", cache_dir=tmp_path, progress=False)
    assert enc.calls == calls == 3
    np.testing.assert_array_equal(first, second)
    assert first.shape == (10, 16)


def test_other_ids_or_model_recompute(tmp_path: Path) -> None:
    enc = CountingEncoder()
    item_embeddings(enc, ITEMS, model_key="m", catalog_key="c", cache_dir=tmp_path, progress=False)
    item_embeddings(enc, ITEMS[:5], model_key="m", catalog_key="c", cache_dir=tmp_path, progress=False)
    item_embeddings(enc, ITEMS, model_key="m2", catalog_key="c", cache_dir=tmp_path, progress=False)
    assert enc.calls == 3


def test_model_dir_key_changes_with_the_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"1")
    before = model_dir_key(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"2")
    assert model_dir_key(tmp_path) != before


def test_text_embeddings_copy_what_a_shared_cache_holds_and_resume(tmp_path: Path) -> None:
    from dsr.encoders.embed_cache import SharedTextCache, text_embeddings
    from dsr.encoders.text_cache import embed_texts_cached

    enc = HashingEncoder(8)
    encoded: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        encoded.extend(texts)
        return enc.encode_queries(texts)

    embed_texts_cached(["red shoe"], enc.encode_queries, tmp_path / "bench")  # a benchmark's cache
    shared = SharedTextCache([tmp_path / "bench", tmp_path / "missing"])
    texts = ["red shoe", "blue hat", "green bag"]
    out = text_embeddings(encode, texts, dim=8, cache_dir=tmp_path / "own", shared=shared, chunk=1, progress=False)
    assert encoded == ["blue hat", "green bag"]  # "red shoe" was copied, not encoded
    np.testing.assert_allclose(out, enc.encode_queries(texts), atol=1e-6)
    again = text_embeddings(encode, texts, dim=8, cache_dir=tmp_path / "own", progress=False)
    assert encoded == ["blue hat", "green bag"]  # everything came from the own cache
    np.testing.assert_array_equal(again, out)
