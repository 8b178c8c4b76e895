"""The demo: a synthetic shop end to end on the embedded backend, with nothing but this package.

It shows what dsr is for. A seeded shop (catalog, queries, users with brand and price tastes) and a
click simulator produce search logs; the DSR towers and the pairwise ranker train on them; the
catalog is ingested into the embedded index and the FAISS sidecar; then queries run three ways.
Queries whose relevant products share no word with the query (synonyms, misspellings,
brand-for-category) come back empty from BM25 and are fixed by semantic retrieval, and the
re-ranker orders the top by what shoppers choose. The same library calls back `dsr train`,
`dsr ingest` and `dsr serve`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsr.logs.synthetic import SyntheticWorld, make_world, simulate_sessions

INDEX = "demo-products"
WORKBENCH_PORT = 9400
Echo = Callable[[str], None]


def _write_catalog(world: SyntheticWorld, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in world.catalog:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_judgments(world: SyntheticWorld, path: Path) -> None:
    """The simulator's true grades of every query's relevant items, as `dsr eval` and the workbench read them."""
    from dsr.server.workbench.judgments import judgments_tsv

    rows = ((q.text, item_id, float(g)) for q in world.queries for item_id, g in sorted(q.relevant.items()))
    path.write_text(judgments_tsv(rows), encoding="utf-8")


def serve_settings(out: Path, *, host: str = "127.0.0.1", port: int = WORKBENCH_PORT) -> Any:
    """`dsr serve` of the demo shop in `out`: its embedded index, models, sidecar and judgments."""
    from dsr.server.settings import ServeSettings
    from dsr.settings import ConnectionSettings

    return ServeSettings(ConnectionSettings(engine_url="embedded", data_dir=out), index=INDEX,
                         model=str(out / "model"), ranker_dir=out / "ranker", sidecar=str(out / "sidecar"),
                         judgments=out / "judgments.tsv", host=host, port=port)


def serve_command(out: Path, port: int = WORKBENCH_PORT) -> str:
    """The command line that serves the demo shop and its relevance workbench."""
    return (f"dsr --engine embedded --data-dir {out} serve --index {INDEX} --model {out / 'model'} "
            f"--ranker {out / 'ranker'} --sidecar {out / 'sidecar'} --judgments {out / 'judgments.tsv'} "
            f"--port {port}")


def _ndcg10(world: SyntheticWorld, query: str, ids: Sequence[str]) -> float:
    """NDCG@10 of a ranking against the simulator's true grades (ideal: all relevant items, best first)."""
    def dcg(gains: Sequence[float]) -> float:
        return float(sum((2.0**g - 1.0) / np.log2(r + 2.0) for r, g in enumerate(gains[:10])))

    ideal = dcg(sorted(world.query(query).relevant.values(), reverse=True))
    return dcg([float(world.grade(query, i)) for i in ids]) / ideal if ideal else 0.0


def _column(world: SyntheticWorld, query: str, titles: Sequence[str], ids: Sequence[str], width: int) -> list[str]:
    out = []
    for rank, (title, doc_id) in enumerate(zip(titles, ids, strict=True), 1):
        grade = world.grade(query, doc_id)
        out.append(f"{rank}. {title[: width - 8]:<{width - 8}} {'*' * grade or '-':<3}")
    return out or ["(no results)"]


def run_demo(out: Path, *, n_items: int = 2000, n_sessions: int = 8000, seed: int = 0, epochs: int = 4,
             echo: Echo = print) -> dict[str, dict[str, float]]:
    from dsr.backends.embedded import EmbeddedBackend
    from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig
    from dsr.ingest.pipeline import IngestOptions, ingest
    from dsr.jobs.train_ranker import RankerJob, run_ranker_job
    from dsr.jobs.train_retrieval import RetrievalJob, run_retrieval_job
    from dsr.logs.jsonl import write_sessions_jsonl
    from dsr.reranker import load_reranker
    from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig
    from dsr.search.hybrid import HybridSearcher
    from dsr.sidecar import open_vector_index

    started = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    world = make_world(n_items=n_items, n_queries=200, n_users=200, seed=seed)
    catalog_path, logs_path = out / "catalog.jsonl", out / "sessions.jsonl"
    _write_catalog(world, catalog_path)
    _write_judgments(world, out / "judgments.tsv")
    sessions = simulate_sessions(world, n_sessions, seed=seed)
    write_sessions_jsonl(sessions, logs_path)
    no_overlap = [q for q in world.queries if q.no_overlap]
    echo(f"1. synthetic shop: {len(world.catalog)} items, {len(world.queries)} queries "
         f"({len(no_overlap)} share no word with their relevant items), {len(sessions)} logged sessions")

    echo(f"2. training the DSR towers on the click logs: hinge loss over (query, clicked, not clicked) "
         f"[{time.perf_counter() - started:.0f}s]")
    model_dir = out / "model"
    run_retrieval_job(RetrievalJob(catalog=catalog_path, out=model_dir, logs=(logs_path,),
                                   train=TrainConfig(schedule=TWO_TOWER_SCHEDULE.replace(
                                       epochs=epochs, seed=seed, progress=False))))
    echo(f"3. training the Siamese pairwise ranker on the same sessions: ordered > cart > click > skipped "
         f"[{time.perf_counter() - started:.0f}s]")
    ranker_dir = out / "ranker"
    run_ranker_job(RankerJob(catalog=catalog_path, logs=[logs_path], out=ranker_dir, xgboost=False,
                             train=SiameseTrainConfig(schedule=RANKER_SCHEDULE.replace(
                                 epochs=epochs, seed=seed, progress=False), evals_per_epoch=1)))

    from dsr.encoders.model import TwoTowerModel

    encoder = TwoTowerModel.load(model_dir)
    backend = EmbeddedBackend(out / "embedded")
    sidecar_dir = out / "sidecar"
    report = ingest(catalog_path, backend=backend, index=INDEX, encoder=encoder, sidecar_dir=sidecar_dir,
                    rejects_path=out / "rejects.jsonl", checkpoint_path=out / "ingest.checkpoint",
                    options=IngestOptions(progress=False))
    echo(f"4. ingested {report.written} items into the embedded index and the FAISS sidecar "
         f"({report.rejected} rejected) [{time.perf_counter() - started:.0f}s]")

    catalog = {str(r["id"]): r for r in world.catalog}
    searcher = HybridSearcher(backend, INDEX, encoder, open_vector_index(sidecar_dir),
                              load_reranker(ranker_dir, catalog=catalog))
    try:
        scores: dict[str, dict[str, list[float]]] = {"all": {}, "no_overlap": {}}
        shown = [*no_overlap[:3], *[q for q in world.queries if not q.no_overlap][:2]]
        for q in world.queries:
            bm25 = [h.id for h in backend.term_search(INDEX, q.text, size=10)]
            hybrid = searcher.search(q.text, size=10, rerank=False)
            reranked = searcher.search(q.text, size=10, rerank=True)
            runs = {"bm25": bm25, "hybrid": [h.id for h in hybrid], "hybrid+rerank": [h.id for h in reranked]}
            for name, ids in runs.items():
                for group in ("all", "no_overlap") if q.no_overlap else ("all",):
                    scores[group].setdefault(name, []).append(_ndcg10(world, q.text, ids))
            if q in shown:
                _print_side_by_side(world, q.text, q.no_overlap, runs, catalog, echo)
    finally:
        searcher.close()
        backend.close()
    summary = {group: {name: float(np.mean(v)) for name, v in runs_.items()} for group, runs_ in scores.items()}
    echo("\nNDCG@10 against the simulator's true relevance (all queries / no-term-overlap queries):")
    for name in ("bm25", "hybrid", "hybrid+rerank"):
        echo(f"  {name:<14} {summary['all'][name]:.3f} / {summary['no_overlap'][name]:.3f}")
    echo(f"\ndone in {time.perf_counter() - started:.0f}s; models, sidecar and index are in {out}")
    echo("grades: *** highly relevant, ** relevant, * somewhat, - not relevant")
    echo(f"\nrelevance workbench of this shop (the simulator's grades loaded as judgments): "
         f"http://127.0.0.1:{WORKBENCH_PORT}/_dsr/")
    echo(f"  served by: {serve_command(out)}")
    echo("  (or `dsr demo --serve`: the demo, then the workbench until Ctrl-C)")
    return summary


def _print_side_by_side(world: SyntheticWorld, query: str, no_overlap: bool, runs: dict[str, list[str]],
                        catalog: dict[str, dict], echo: Echo, width: int = 40, rows: int = 5) -> None:
    echo(f"\nquery: {query!r}" + ("   <- shares no word with the products it wants" if no_overlap else ""))
    columns = [_column(world, query, [str(catalog[i].get("title", "")) for i in ids[:rows]], ids[:rows], width)
               for ids in runs.values()]
    echo("   " + "".join(f"{name:<{width}}" for name in runs))
    for r in range(max(len(c) for c in columns)):
        echo("   " + "".join(f"{(c[r] if r < len(c) else ''):<{width}}" for c in columns))
