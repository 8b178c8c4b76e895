"""`dsr train` as a library call: from a catalog and logs and/or judgments to both models and a verdict.

The run reads the data once, chooses a recipe from what it holds (`dsr.jobs.recipe`), holds out a
validation part (`dsr.jobs.train_data`), trains the towers and the ranker with the same jobs as
`dsr train retrieval` and `dsr train ranker`, and measures BM25, DSR, hybrid and hybrid + re-rank
on the held-out part with `dsr eval`'s runner. The output directory holds:

    dsr/          the retrieval model (`dsr ingest --model`, `dsr serve --model`)
    ranker/       the ranker (`dsr serve --ranker`)
    report.json   facts, recipe and reasons, stages, the validation table, the recommendation
    data/         the training and validation parts as files
    work/         stage records, the validation index and cached item vectors

Each stage is resumable (`dsr.jobs.stages`): the same command run again skips the stages it already
finished. A time budget is shared among the stages (`dsr.jobs.budget`); a trainer that reaches its
stage's deadline stops and keeps what it learnt. Torch and faiss run on `threads` CPU threads, and
on the GPU when there is one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsr.device import default_threads, resolve_device, use_threads
from dsr.errors import InputError
from dsr.jobs.budget import TimeBudget, format_duration
from dsr.jobs.recipe import DataFacts, Recipe, choose_recipe, tuning_allowance
from dsr.jobs.stages import StageRecord, StageStore, config_key, is_current
from dsr.jobs.train_data import SplitFiles, gather_facts, load_training_data, read_validation, split_data
from dsr.jobs.validation_table import ValidationTable, measure
from dsr.settings import ConnectionSettings
from dsr.sidecar.storage import atomic_write_bytes, sha256_file

MODEL_DIR = "dsr"
RANKER_DIR = "ranker"
REPORT_FILE = "report.json"
DATA_DIR = "data"
WORK_DIR = "work"
HEADS_SHARE = 0.25  # of the retrieval stage: the least the tower heads get on a backbone, from their start
RANKER_TRAIN_SHARE = 0.4  # of the ranker stage: the least its training gets, from the end of its first stage


@dataclass(frozen=True)
class TrainingJob:
    catalog: Path
    out: Path
    logs: tuple[Path, ...] = ()
    judgments: Path | None = None
    log_format: str = "auto"
    applications: tuple[str, ...] | None = None
    max_errors: int | None = 100
    time_budget_s: float | None = None
    threads: int = field(default_factory=default_threads)
    device: str | None = None
    backbone: str = "auto"  # or tuned / frozen / none, overriding the recipe's choice
    validation_share: float | None = None  # None: the recipe's
    seed: int = 0
    progress: bool = True
    force: bool = False  # run every stage, finished or not
    settings: ConnectionSettings | None = None  # the engine BM25 runs on in the table (None: embedded)
    start_from: Path | None = None  # an earlier `dsr train --out` (another shop or set): its models go on training


@dataclass(frozen=True)
class StageOutcome:
    name: str
    status: str  # "trained", "resumed" or "failed"
    seconds: float
    allowance_s: float | None = None
    stopped_at_budget: bool = False
    summary: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "seconds": round(self.seconds, 1),
                "allowance_s": None if self.allowance_s is None else round(self.allowance_s, 1),
                "stopped_at_budget": self.stopped_at_budget, **self.summary}


@dataclass(frozen=True)
class TrainingReport:
    facts: DataFacts
    recipe: Recipe
    stages: tuple[StageOutcome, ...]
    table: ValidationTable | None
    seconds: float
    split: SplitFiles

    def stage(self, name: str) -> StageOutcome:
        return next(s for s in self.stages if s.name == name)


def _hashes(paths: list[Path]) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in paths}


def _model_key(path: Path) -> str | None:
    from dsr.encoders.embed_cache import model_dir_key

    return model_dir_key(path) if path.is_dir() else None


class _Stages:
    """Runs stages in order: skips the ones a matching record vouches for, times and records the rest."""

    def __init__(self, job: TrainingJob, budget: TimeBudget, store: StageStore, say: Callable[[str], None]) -> None:
        self.job, self.budget, self.store, self.say = job, budget, store, say
        self.outcomes: list[StageOutcome] = []

    def run(self, name: str, config: Mapping[str, Any], done: Callable[[], bool],
            body: Callable[[float | None], tuple[dict[str, Any], bool]], *, optional: bool = False) -> StageOutcome:
        """Run `body(allowance)` -> (summary, stopped at budget) unless a record of `config` vouches for
        `done()` outputs; an `optional` stage's data error is reported and the run goes on without it."""
        key = config_key(config)
        record = self.store.read(name)
        if not self.job.force and record is not None and done() and is_current(record, key, self.job.time_budget_s):
            self.budget.done(name)
            self.say(f"[{name}] resumed: finished in an earlier run with the same inputs and settings "
                     f"({format_duration(record.seconds)}); --force redoes it")
            outcome = StageOutcome(name, "resumed", record.seconds, stopped_at_budget=record.stopped_at_budget,
                                   summary=record.summary)
            self.outcomes.append(outcome)
            return outcome
        self.store.clear(name)
        allowance = self.budget.allowance(name)
        self.say(f"[{name}] " + ("no time limit" if allowance is None else
                                 f"{format_duration(allowance)} of the time budget"))
        started = time.monotonic()
        try:
            summary, stopped = body(allowance)
        except InputError as e:
            if not optional:
                raise
            self.budget.done(name)
            self.say(f"[{name}] failed: {e}")
            outcome = StageOutcome(name, "failed", time.monotonic() - started, allowance, summary={"error": str(e)})
            self.outcomes.append(outcome)
            return outcome
        seconds = time.monotonic() - started
        self.budget.done(name)
        self.store.write(StageRecord(name, key, dict(config), seconds, stopped,
                                     self.job.time_budget_s if stopped else None, summary))
        over = f", {format_duration(seconds - allowance)} over its share" if allowance and seconds > allowance else ""
        self.say(f"[{name}] done in {format_duration(seconds)}"
                 + (" (stopped at its time budget, keeping what it had learnt)" if stopped else "") + over)
        outcome = StageOutcome(name, "trained", seconds, allowance, stopped, summary)
        self.outcomes.append(outcome)
        return outcome


def run_training(job: TrainingJob, log: Callable[[str], None] | None = None) -> TrainingReport:
    """Choose the recipe, train both models, measure the pipelines, write `report.json`."""
    say = log or (lambda _m: None)
    clock_start = time.monotonic()
    use_threads(job.threads)
    device = resolve_device(job.device)
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)

    start_backbone, start_ranker = starting_models(job.start_from)  # a wrong folder fails before any work
    data = load_training_data(job.catalog, logs=job.logs, judgments=job.judgments, log_format=job.log_format,
                              applications=job.applications, max_errors=job.max_errors, log=say)
    facts = gather_facts(data, device=device, threads=job.threads, time_budget_s=job.time_budget_s)
    try:
        recipe = choose_recipe(facts, backbone=job.backbone, validation_share=job.validation_share)
    except ValueError as e:
        raise InputError(f"cannot train: {e}") from None
    say("recipe:")
    for choice, why in recipe.reasons.items():
        say(f"  {choice}: {why}")
    budget = TimeBudget(job.time_budget_s, recipe.shares, started=clock_start)
    split = split_data(data, recipe, out / DATA_DIR)
    say(f"validation: {split.validation_queries} queries held out by {recipe.validation}; "
        f"training on {split.train_queries} queries")
    stages = _Stages(job, budget, StageStore(out / WORK_DIR / "stages"), say)
    catalog_sha = sha256_file(job.catalog)
    vectors = out / WORK_DIR / "cache" / "embeddings"
    model_dir, ranker_dir = out / MODEL_DIR, out / RANKER_DIR

    from dsr.jobs.evaluate.pipelines import is_model_dir

    if job.start_from is not None:
        say(f"starting from {job.start_from}: backbone {start_backbone or 'none (stock MiniLM)'}, "
            f"ranker {start_ranker or 'none (from scratch)'}")
    retrieval_inputs = [p for p in (split.train_judgments, split.train_sessions) if p is not None]
    stages.run("retrieval",
               {"catalog": catalog_sha, "inputs": _hashes(retrieval_inputs), "recipe": recipe.retrieval.to_dict(),
                "seed": job.seed, "epoch_validation_share": recipe.epoch_validation_share,
                "start": _model_key(start_backbone) if start_backbone else None},
               done=lambda: is_model_dir(model_dir),
               body=lambda allowance: _train_retrieval(job, recipe, facts, split, model_dir, vectors, device,
                                                       allowance, say, start_backbone))

    ranker_inputs = _ranker_inputs(recipe, split)
    stages.run("ranker",
               {"catalog": catalog_sha, "inputs": _hashes([p for p in ranker_inputs.values() if p is not None]),
                "model": _model_key(model_dir), "ranker_data": recipe.ranker_data,
                "unjudged_grade": recipe.unjudged_grade, "seed": job.seed,
                "start": _model_key(start_ranker) if start_ranker else None},
               done=lambda: is_model_dir(ranker_dir),
               body=lambda allowance: _train_ranker(job, recipe, ranker_inputs, model_dir, ranker_dir, vectors,
                                                    allowance, say, start_ranker), optional=True)
    ranker = ranker_dir if stages.outcomes[-1].status != "failed" and is_model_dir(ranker_dir) else None

    settings = job.settings or ConnectionSettings()
    eval_settings = dataclasses.replace(settings, data_dir=out / WORK_DIR)  # the embedded index lives there
    validation = stages.run(
        "validation",
        {"validation": sha256_file(split.validation), "model": _model_key(model_dir),
         "ranker": _model_key(ranker) if ranker else None, "engine": settings.engine_url or "embedded"},
        done=lambda: True,
        body=lambda _allowance: ({"table": measure(read_validation(split.validation), data.catalog,
                                                   model_dir=model_dir, ranker_dir=ranker, settings=eval_settings,
                                                   progress=job.progress).to_dict()}, False))
    table = ValidationTable.from_dict(validation.summary["table"]) if "table" in validation.summary else None
    report = TrainingReport(facts, recipe, tuple(stages.outcomes), table, time.monotonic() - clock_start, split)
    _write_report(job, report, out / REPORT_FILE)
    budget_note = "" if job.time_budget_s is None else f" of a {format_duration(job.time_budget_s)} budget"
    say(f"done in {format_duration(report.seconds)}{budget_note}; report: {out / REPORT_FILE}")
    return report


def _train_retrieval(job: TrainingJob, recipe: Recipe, facts: DataFacts, split: SplitFiles, model_dir: Path,
                     vectors: Path, device: str, allowance: float | None,
                     say: Callable[[str], None], start: Path | None = None) -> tuple[dict[str, Any], bool]:
    import math

    from dsr.encoders.backbone_tuning import BACKBONE_SCHEDULE, BackboneTuneConfig
    from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig
    from dsr.jobs.train_retrieval import RetrievalJob, run_retrieval_job

    r = recipe.retrieval
    tune = None
    if r.backbone == "tuned":
        tune_s = None if allowance is None else tuning_allowance(allowance, facts)
        tune = BackboneTuneConfig(schedule=BACKBONE_SCHEDULE.replace(
            epochs=r.backbone_epochs, seed=job.seed, threads=job.threads, progress=job.progress).within(tune_s),
            start=str(start) if start is not None else None)
    heads = TWO_TOWER_SCHEDULE.replace(epochs=r.epochs, lr=r.lr, seed=job.seed, threads=job.threads,
                                       progress=job.progress).within(allowance)
    # heads on backbone vectors take seconds an epoch: however long the tuning and the encoding took,
    # they get a share of the stage from their own start
    heads_min_s = HEADS_SHARE * allowance if allowance is not None and r.backbone != "none" else None
    retrieval_job = RetrievalJob(
        catalog=job.catalog, out=model_dir, logs=(split.train_sessions,) if split.train_sessions else (),
        judgments=split.train_judgments, log_format="jsonl", negatives=r.negatives,
        backbone=None if r.backbone == "none" else "minilm", hidden=r.hidden, device=device,
        validation_share=recipe.epoch_validation_share, train=TrainConfig(schedule=heads, loss=r.loss),
        tune_backbone=tune, vector_cache=vectors, heads_min_s=heads_min_s)
    _, report = run_retrieval_job(retrieval_job, log=say)
    result = report.result
    summary: dict[str, Any] = {"triples": report.triples, "validation_queries": report.validation_queries}
    stopped = bool(result and len(result.epochs) < r.epochs) or (heads.out_of_time() and heads_min_s is None)
    if result is not None:
        summary.update(best_epoch=result.best_epoch, epochs_run=len(result.epochs),
                       val_recall100=[e.val_recall for e in result.epochs],
                       triples_per_s=round(result.triples_per_s, 1))
    if report.backbone is not None and tune is not None:
        planned = max(1, math.ceil(report.triples * tune.schedule.epochs / tune.schedule.batch_size))
        summary["backbone"] = {"steps": report.backbone.steps, "planned_steps": planned,
                               "seconds": round(report.backbone.seconds, 1),
                               "loss": [round(report.backbone.first_loss, 4), round(report.backbone.last_loss, 4)]}
        stopped = stopped or report.backbone.steps < planned
    return summary, stopped


def starting_models(start: Path | None) -> tuple[Path | None, Path | None]:
    """The tuned backbone and the ranker of an earlier `dsr train --out` that this run goes on from.

    Either may be absent (a run whose towers kept the stock MiniLM, or had no ranker); a folder with
    neither is refused, so a mistyped path never silently means "from scratch".
    """
    if start is None:
        return None, None
    backbone = start / MODEL_DIR / "backbone"
    ranker = start / RANKER_DIR
    found = (backbone if (backbone / "modules.json").is_file() else None,
             ranker if (ranker / "siamese" / "config.json").is_file() else None)
    if found == (None, None):
        raise InputError(f"{start}: nothing to start from (no {MODEL_DIR}/backbone/ and no {RANKER_DIR}/siamese/; "
                         "give the --out of an earlier dsr train)")
    return found


def _ranker_inputs(recipe: Recipe, split: SplitFiles) -> dict[str, Path | None]:
    """The files the ranker learns from under the recipe: sessions, and graded or click judgments."""
    sessions = split.train_sessions if "sessions" in recipe.ranker_data else None
    if recipe.ranker_data == "clicks":
        judgments = split.train_clicks
    elif "judgments" in recipe.ranker_data:
        judgments = split.train_judgments
    else:
        judgments = None
    return {"sessions": sessions, "judgments": judgments}


def _train_ranker(job: TrainingJob, recipe: Recipe, inputs: Mapping[str, Path | None], model_dir: Path,
                  ranker_dir: Path, vectors: Path, allowance: float | None,
                  say: Callable[[str], None], start: Path | None = None) -> tuple[dict[str, Any], bool]:
    from dsr.jobs.train_ranker import RankerJob, run_ranker_job
    from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig

    schedule = RANKER_SCHEDULE.replace(seed=job.seed, threads=job.threads, progress=job.progress).within(allowance)
    sessions, judgments = inputs["sessions"], inputs["judgments"]
    ranker_job = RankerJob(catalog=job.catalog, out=ranker_dir, logs=[sessions] if sessions else [],
                           log_format="jsonl", judgments=judgments, model=model_dir, cache_dir=vectors,
                           unjudged_grade=recipe.unjudged_grade, xgboost=True, start_from=start,
                           train_min_s=RANKER_TRAIN_SHARE * allowance if allowance is not None else None,
                           train=SiameseTrainConfig(schedule=schedule))
    report = run_ranker_job(ranker_job, log=say)
    summary = {"pairs": report.pairs.pairs if report.pairs else 0, "train_groups": report.train_sessions,
               "validation_groups": report.validation_sessions, "best_epoch": report.siamese.get("best_epoch"),
               "epochs_run": report.siamese.get("epochs_run"), "best_val": report.siamese.get("best_val"),
               "served": report.choice.served if report.choice else None,
               "why": report.choice.reason if report.choice else None,
               "validation": report.choice.figures if report.choice else {}}
    return summary, schedule.out_of_time()


def _write_report(job: TrainingJob, report: TrainingReport, path: Path) -> None:
    table = report.table
    doc = {
        "catalog": str(job.catalog), "logs": [str(p) for p in job.logs],
        "judgments": str(job.judgments) if job.judgments else None,
        "models": {"dsr": str(job.out / MODEL_DIR), "ranker": str(job.out / RANKER_DIR)},
        "facts": report.facts.to_dict(), "recipe": report.recipe.to_dict(),
        "split": {"validation": report.recipe.validation, "validation_queries": report.split.validation_queries,
                  "train_queries": report.split.train_queries},
        "stages": {s.name: {k: v for k, v in s.to_dict().items() if k != "table"} for s in report.stages},
        "validation": table.to_dict() if table is not None else None,
        "recommended": table.recommended()[0] if table is not None else None,
        "seconds": round(report.seconds, 1), "time_budget_s": job.time_budget_s,
        "threads": job.threads, "device": report.facts.device,
    }
    atomic_write_bytes(path, (json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))
