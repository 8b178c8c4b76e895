"""`dsr train ranker` as a library call: logs + catalog -> Siamese ranker and XGBoost baseline.

The output directory holds `siamese/` and `xgboost/` (each a dsr model directory),
`training_summary.json` (pair report, validation figures, epochs) and `served.json` (which of the two
serves, and why: `dsr.reranker.choice`). Validation is a split by session, so no session
contributes pairs to both sides.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dsr.catalog import Item
from dsr.errors import InputError
from dsr.reranker.base import Reranker
from dsr.reranker.choice import RankerChoice, choose_ranker, write_choice
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import click_histories, groups_from_sessions
from dsr.reranker.load import SIAMESE_DIR, XGBOOST_DIR
from dsr.reranker.pairs import PairReport, PositionBias, build_pairs
from dsr.reranker.trainer import SiameseTrainConfig, split_by_group, train_siamese
from dsr.reranker.xgb import XGBoostRanker, train_xgboost

SUMMARY_FILE = "training_summary.json"


@dataclass(frozen=True)
class RankerJob:
    catalog: Path
    out: Path
    logs: Sequence[Path] = ()
    log_format: str = "auto"
    applications: Sequence[str] | None = None
    max_errors: int | None = 100
    validation_share: float = 0.1
    bias: PositionBias = field(default_factory=PositionBias)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: SiameseTrainConfig = field(default_factory=SiameseTrainConfig)
    xgboost: bool = True
    judgments: Path | None = None  # graded query-item judgments (query, item_id, grade tsv)
    model: Path | None = None  # the DSR model whose first stage produces the judged queries' candidates
    cache_dir: Path | None = None  # item vectors of `model`, shared with `dsr eval`
    unjudged_grade: float | None = None  # label of unjudged candidates (default: the lowest grade)
    click_sessions: bool = False  # logs without impressions: one group per session from the first stage
    start_from: Path | None = None  # a `dsr train ranker` output whose models go on training on this data
    train_min_s: float | None = None  # the rankers' least time from the end of the first stage, past the deadline


@dataclass
class RankerReport:
    catalog_items: int = 0
    catalog_rejected: int = 0
    log_summary: str = ""
    log_problems: list[str] = field(default_factory=list)
    pairs: PairReport | None = None
    train_sessions: int = 0
    validation_sessions: int = 0
    siamese: dict[str, Any] = field(default_factory=dict)
    xgboost: dict[str, Any] = field(default_factory=dict)
    choice: RankerChoice | None = None


def run_ranker_job(job: RankerJob, log: Callable[[str], None] | None = None) -> RankerReport:
    from dsr.catalog import read_catalog_items
    from dsr.logs.load import load_logs

    say = log or (lambda _m: None)
    if not job.logs and job.judgments is None:
        raise InputError("no training data: give --logs and/or --judgments")
    report = RankerReport()
    items, report.catalog_rejected = read_catalog_items(job.catalog)
    catalog: dict[str, Item] = {str(i["id"]): i for i in items}
    report.catalog_items = len(catalog)
    say(f"catalog: {len(catalog)} items, {report.catalog_rejected} rows rejected")
    groups = []
    report.pairs = PairReport()
    if job.logs:
        # unknown ids are kept by the loader so that pair building can count and report them
        sessions, load_report = load_logs(list(job.logs), fmt=job.log_format, applications=job.applications,
                                          max_errors=job.max_errors)
        report.log_summary = load_report.summary()
        report.log_problems = [f"line {p.line}: {p.reason}" for p in load_report.problems]
        say(f"logs: {report.log_summary}")
        session_pairs, report.pairs = build_pairs(sessions, known_ids=catalog, bias=job.bias)
        say(f"pairs: {report.pairs.summary()}")
        unshown = [s for s in sessions if not s.impressions] if job.click_sessions else []
        if not session_pairs and not unshown and job.judgments is None:
            raise InputError("no training pairs: no session has both a preferred and a non-preferred shown item")
        histories = click_histories(sessions, depth=job.features.click_depth)
        groups += groups_from_sessions(session_pairs, catalog, histories=histories)
        if unshown:
            from dsr.jobs.judged_candidates import click_session_groups

            clicked, _skipped = click_session_groups(
                unshown, catalog, model_dir=job.model, depth=job.features.click_depth, cache_dir=job.cache_dir,
                progress=job.train.schedule.progress, log=say, seed=job.train.schedule.seed,
                histories=histories)
            report.pairs.pairs += sum(len(g.pairs) for g in clicked)
            groups += clicked
            if not groups and job.judgments is None:
                raise InputError("no training pairs: no logged click is among the first stage's candidates")
    if job.judgments is not None:
        from dsr.jobs.judged_candidates import judged_groups
        from dsr.logs.judged import read_graded

        graded, judged_report = read_graded(job.judgments, known_items=catalog, max_errors=job.max_errors)
        report.log_problems += [f"{job.judgments} line {p.line}: {p.reason}" for p in judged_report.problems]
        say(f"judgments: {judged_report.summary()}")
        judged, _skipped = judged_groups(graded, catalog, model_dir=job.model, cache_dir=job.cache_dir,
                                         progress=job.train.schedule.progress, log=say,
                                         seed=job.train.schedule.seed,
                                         unjudged_grade=job.unjudged_grade)
        report.pairs.pairs += sum(len(g.pairs) for g in judged)
        groups += judged
        if not groups:
            raise InputError("no training pairs: no judged query has candidates of different grades")
    train, val = split_by_group(groups, job.validation_share, seed=job.train.schedule.seed)
    if not train:
        raise InputError("every session landed in the validation split; lower --validation-share")
    report.train_sessions, report.validation_sessions = len(train), len(val)
    say(f"split by session: {len(train)} train, {len(val)} validation")
    siamese_start, xgb_start = _starting_points(job.start_from)
    features = job.features
    if siamese_start is not None:
        from dsr.modelio import read_config
        from dsr.reranker.siamese import FORMAT_VERSION, KIND

        start_config = read_config(siamese_start, kind=KIND, supported_versions=(FORMAT_VERSION,))
        features = FeatureConfig.from_config(start_config["features"])
        say(f"the rankers go on from {job.start_from} (its features, its weights)")
    extractor = FeatureExtractor(features, catalog)
    train_config = job.train if siamese_start is None else replace(job.train, init=str(siamese_start))
    if job.train_min_s is not None and train_config.schedule.deadline is not None:
        # the first stage (every query through the hybrid searcher) cannot stop early; training gets its share
        train_config = replace(train_config, schedule=train_config.schedule.replace(
            deadline=max(train_config.schedule.deadline, time.monotonic() + job.train_min_s)))
    siamese, summary = train_siamese(train, val, extractor, train_config)
    report.siamese = summary.to_dict()
    siamese.save(job.out / SIAMESE_DIR, extra={"trained_on": {"sessions": len(train), "pairs": report.pairs.pairs}})
    say(f"siamese: best epoch {summary.best_epoch} of {summary.epochs_run}, validation {summary.best_val}")
    trained: dict[str, Reranker] = {SIAMESE_DIR: siamese}
    if job.xgboost:
        threads = job.train.schedule.threads
        init = XGBoostRanker.load(xgb_start, catalog=catalog) if xgb_start is not None else None
        xgb_ranker, report.xgboost = train_xgboost(train, val, extractor, seed=job.train.schedule.seed, init=init,
                                                   **({"threads": threads} if threads else {}))
        xgb_ranker.save(job.out / XGBOOST_DIR)
        trained[XGBOOST_DIR] = xgb_ranker
        say(f"xgboost: {report.xgboost}")
    report.choice = choose_ranker(trained, val)
    write_choice(job.out, report.choice)
    say(f"serves {report.choice.reason}")
    summary_doc = {
        "catalog_items": report.catalog_items, "catalog_rejected": report.catalog_rejected,
        "logs": report.log_summary, "log_problems": report.log_problems[:100],
        "pairs": report.pairs.to_dict(), "position_bias": {"eta": job.bias.eta, "max_weight": job.bias.max_weight},
        "train_sessions": report.train_sessions, "validation_sessions": report.validation_sessions,
        "siamese": report.siamese, "xgboost": report.xgboost,
        "validation": report.choice.figures, "served": report.choice.served,
    }
    (job.out / SUMMARY_FILE).write_text(json.dumps(summary_doc, indent=2, sort_keys=True) + "\n")
    return report




def _starting_points(start: Path | None) -> tuple[Path | None, Path | None]:
    """The Siamese and XGBoost model directories of a `dsr train ranker` output (or of one Siamese model)."""
    if start is None:
        return None, None
    if (start / SIAMESE_DIR / "config.json").is_file():
        xgb = start / XGBOOST_DIR
        return start / SIAMESE_DIR, xgb if (xgb / "config.json").is_file() else None
    if (start / "config.json").is_file():
        return start, None
    raise InputError(f"{start}: no ranker to start from (no {SIAMESE_DIR}/ and no config.json)")
