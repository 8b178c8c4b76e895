"""`dsr eval` pipelines end to end on a tiny real slice (crowdflower dev), against real engines."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from dsr.errors import UsageError
from dsr.eval.dataset import EvalDataset, Split, datasets_root
from dsr.eval.loaders import load_crowdflower
from dsr.jobs.evaluate.report import write_report
from dsr.jobs.evaluate.runner import evaluate_dataset
from dsr.settings import ConnectionSettings

N_QUERIES = 6


@pytest.fixture(scope="module")
def slice_dataset() -> EvalDataset:
    """Six real dev queries, their ~40 judged products each, plus 150 unjudged distractors."""
    try:
        full = load_crowdflower(datasets_root())
    except UsageError:
        pytest.skip("the shared datasets folder is not present on this machine")
    dev = full.split("dev")
    judgments = {q: dev.judgments[q] for q in dev.queries[:N_QUERIES]}
    wanted = {i for judged in judgments.values() for i in judged}
    items, extra = [], 0
    for item in full.items():
        if item["id"] in wanted:
            items.append(item)
        elif extra < 150:
            items.append(item)
            extra += 1
    return EvalDataset("cf-slice", {"dev": Split(judgments)}, lambda: iter(items))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval-data")  # shared: the MiniLM item vectors are encoded once


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
def test_bm25_knn_and_engine_hybrid_on_a_real_slice(
    flavor: str, request: pytest.FixtureRequest, slice_dataset: EvalDataset, data_dir: Path, tmp_path: Path
) -> None:
    backend = request.getfixturevalue("es_backend" if flavor == "elasticsearch" else "os_backend")
    prefix = f"dsr-test-eval-{uuid.uuid4().hex[:8]}"
    index = f"{prefix}-{slice_dataset.name}-{slice_dataset.catalog_fingerprint()}-minilm"
    settings = ConnectionSettings(engine_url=backend.url, data_dir=data_dir)
    try:
        res = evaluate_dataset(
            slice_dataset,
            ["bm25", "knn-untuned", "engine-hybrid"],
            settings=settings,
            backend=backend,
            index_prefix=prefix,
            progress=False,
        )
    finally:
        if backend.index_exists(index):
            backend.delete_index(index)
    assert set(res.results) == {"bm25", "knn-untuned", "engine-hybrid"}
    for name, r in res.results.items():
        assert len(r.evaluation.queries) == N_QUERIES, name
        assert r.means["ndcg10"] > 0.5, (name, r.means)  # judged products are among 150 distractors only
        assert all(0 < len(run) <= 100 for run in r.run.values()), name
    # kNN always fills k=100 from the ~390-item index; BM25 returns only the matching products
    assert all(len(run) == 100 for run in res.results["knn-untuned"].run.values())
    hybrid = res.results["engine-hybrid"]
    assert hybrid.label.startswith("engine-hybrid")
    if "client-side RRF" in hybrid.label:  # the reason is the engine's own answer, not an assumption
        assert ("rrf" in hybrid.label) if flavor == "elasticsearch" else ("neural-search" in hybrid.label)
    paths = write_report([res], tmp_path)
    report = json.loads(paths["json"].read_text())
    assert set(report["cf-slice"]["dev"]) == {"bm25", "knn-untuned", "engine-hybrid"}
    assert (tmp_path / "cf-slice-dev-ndcg10.png").exists()
