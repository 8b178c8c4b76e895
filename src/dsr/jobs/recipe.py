"""Which training recipe `dsr train` runs, chosen from what the data holds: a pure function of facts.

The facts are counts a reader gathers in one pass (items, descriptions, judged pairs and their
grades, sessions with clicks, impressions and times), the device and the time budget. Every choice
comes with the reason it was made, so the printed recipe says why, and the unit tests pin the rules.

The retrieval recipe that wins on the shared sets is `TUNED_TOWERS`: MiniLM fine-tuned on the
training triples, then residual tower heads trained with in-batch softmax at a small learning rate
(hashed n-gram heads alone overfit a few thousand judged pairs). It is also `dsr train retrieval`'s
default. Fine-tuning costs a pass of MiniLM over every triple and an encoding of the catalog, so a
time budget too small for that falls back to a fraction of an epoch, then to the frozen backbone,
then to the n-gram towers, each saying so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

POSITIVE_GRADE = 2.5
"""Judged pairs at or above this grade are positives (`dsr.logs.judged`), so grades are put on a 1-3+ scale."""
MIN_TUNING_TRIPLES = 512
"""Below this many training triples (8 batches) MiniLM's weights are left alone."""
MIN_TUNING_EPOCHS = 0.1
"""A budget that allows less backbone tuning than this share of one pass keeps the backbone frozen."""
VALIDATION_QUERIES = (30, 1000)
"""At least / at most this many validation queries, within 10-20% of the queries."""
EPOCH_CHOICE_QUERIES = 200
"""Training queries needed before a tenth of them is held out to choose the towers' epoch."""


@dataclass(frozen=True)
class RetrievalSettings:
    """How the DSR towers train: the options `dsr train retrieval` takes, as one value."""

    backbone: str  # "tuned" (MiniLM fine-tuned, then heads), "frozen" (heads on MiniLM), "none" (n-grams)
    backbone_epochs: float  # passes over the triples when tuning (fractions allowed)
    loss: str
    epochs: int
    lr: float
    hidden: tuple[int, ...]
    negatives: tuple[str, ...] = ("hard", "random")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden), "negatives": list(self.negatives)}


TUNED_TOWERS = RetrievalSettings("tuned", 1.0, "softmax", 4, 3e-4, (256,))
"""The winning recipe: one pass of backbone tuning, four epochs of residual heads, in-batch softmax."""
FROZEN_TOWERS = dataclasses.replace(TUNED_TOWERS, backbone="frozen", backbone_epochs=0.0)
NGRAM_TOWERS = RetrievalSettings("none", 0.0, "hinge", 5, 2e-3, (256, 128))
"""Hashed n-gram towers with the paper's hinge loss: no transformer, seconds on a CPU."""
BACKBONES = ("auto", "tuned", "frozen", "none")


@dataclass(frozen=True)
class GradeMap:
    """grade -> scale * grade + offset: judged grades onto the 1-based scale the triple builder reads."""

    scale: float = 1.0
    offset: float = 0.0

    def __call__(self, grade: float) -> float:
        return self.scale * grade + self.offset

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0


@dataclass(frozen=True)
class CostModel:
    """What the expensive steps cost on this machine: MiniLM encoding and backbone tuning rates."""

    encode_per_s: float  # item texts MiniLM encodes per second
    tune_steps_per_s: float  # backbone-tuning batches (64 triples) per second

    @classmethod
    def for_device(cls, device: str, threads: int) -> CostModel:
        """Rates measured here (2 CPU threads: 300 items/s, 3 s a tuning step), scaled by threads."""
        if device.startswith("cuda"):
            return cls(encode_per_s=3000.0, tune_steps_per_s=8.0)
        scale = max(1, min(threads, 8)) / 2
        return cls(encode_per_s=300.0 * scale, tune_steps_per_s=scale / 3.0)


@dataclass(frozen=True)
class DataFacts:
    """What a catalog, its logs and its judgments hold, as far as the recipe cares."""

    items: int
    described_items: int = 0
    judged_queries: int = 0
    judged_pairs: int = 0
    grades: tuple[tuple[float, int], ...] = ()  # (grade, pairs), ascending
    sessions: int = 0
    clicked_sessions: int = 0
    clicks: int = 0  # clicked, carted or ordered items over all sessions
    shown_sessions: int = 0  # sessions with impressions and a click: pairs for the ranker
    timed_sessions: int = 0
    log_queries: int = 0
    device: str = "cpu"
    threads: int = 2
    time_budget_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "grades": [list(g) for g in self.grades]}


@dataclass(frozen=True)
class Recipe:
    """Everything `dsr train` decided, with `reasons[choice]` saying why."""

    retrieval: RetrievalSettings
    validation: str  # "query" (held-out queries) or "time" (the latest sessions)
    validation_share: float
    grade_map: GradeMap
    epoch_validation_share: float  # of the training queries, to choose the towers' epoch (0: keep the last)
    ranker_data: str  # "sessions", "judgments", "sessions+judgments" or "clicks"
    unjudged_grade: float | None  # ranker label of unjudged first-stage candidates (None: lowest grade)
    shares: Mapping[str, float]  # stage -> share of the time budget
    reasons: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"retrieval": self.retrieval.to_dict(), "validation": self.validation,
                "validation_share": self.validation_share, "epoch_validation_share": self.epoch_validation_share,
                "grade_map": {"scale": self.grade_map.scale, "offset": self.grade_map.offset},
                "ranker_data": self.ranker_data, "unjudged_grade": self.unjudged_grade,
                "shares": dict(self.shares), "reasons": dict(self.reasons)}


STAGE_SHARES = {"tuned": {"retrieval": 0.6, "ranker": 0.25, "validation": 0.15},
                "other": {"retrieval": 0.4, "ranker": 0.4, "validation": 0.2}}


def choose_grade_map(facts: DataFacts) -> tuple[GradeMap, str]:
    """Put the judgments' grades where the triple builder looks for positives (>= 2.5 of 1-3+)."""
    if not facts.grades:
        return GradeMap(), "no judgments"
    low, high = facts.grades[0][0], facts.grades[-1][0]
    if len(facts.grades) == 1:
        return GradeMap(0.0, 3.0), (f"every judged pair has grade {low:g}: the file lists relevant items only "
                                    "(clicks, say), so each is a positive (grade 3) and an unlisted candidate "
                                    "is not relevant")
    if low == 0 and high + 1 >= POSITIVE_GRADE:
        return GradeMap(1.0, 1.0), (f"grades {low:g}-{high:g} start at 0 (0 = judged not relevant): shifted "
                                    f"by one onto {low + 1:g}-{high + 1:g}, the scale positives (>= "
                                    f"{POSITIVE_GRADE}) are read on")
    if high < POSITIVE_GRADE:
        scale = 2.0 / (high - low)
        return GradeMap(scale, 1.0 - scale * low), (f"grades {low:g}-{high:g} never reach {POSITIVE_GRADE}: "
                                                    "spread onto 1-3, so the top grade is a positive")
    return GradeMap(), f"grades {low:g}-{high:g}: positives are those >= {POSITIVE_GRADE}"


def _positive_pairs(facts: DataFacts, grade_map: GradeMap) -> int:
    return sum(n for g, n in facts.grades if grade_map(g) >= POSITIVE_GRADE)


def choose_validation(facts: DataFacts, share: float | None = None) -> tuple[str, float, str]:
    """How the validation part is held out: by query for judgments, by time for logs that carry times."""
    by_time = not facts.judged_queries and facts.sessions > 0 and facts.timed_sessions >= 0.9 * facts.sessions
    if by_time:
        chosen = share if share is not None else (0.1 if facts.sessions >= 1000 else 0.2)
        return "time", chosen, (f"logs only, {facts.timed_sessions} of {facts.sessions} sessions timed: the latest "
                                f"{chosen:.0%} of sessions are held out, as serving meets tomorrow's queries")
    queries = facts.judged_queries or facts.log_queries
    what = "judged" if facts.judged_queries else "logged"
    if share is None:
        low, high = VALIDATION_QUERIES
        chosen = min(0.2, max(0.1, low / max(queries, 1)), high / max(queries, 1))
    else:
        chosen = share
    return "query", round(chosen, 4), (f"{queries} {what} queries: {chosen:.0%} of them (about "
                                       f"{max(1, round(queries * chosen))}) are held out whole, so no validation "
                                       "query is trained on")


def choose_retrieval(facts: DataFacts, *, backbone: str = "auto", positives: int, validation_share: float,
                     costs: CostModel | None = None) -> tuple[RetrievalSettings, str]:
    """Tuned, frozen or n-gram towers, from the triples there are, the catalog size and the budget."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone choice {backbone!r} (one of {', '.join(BACKBONES)})")
    negatives = ("hard", "random") if facts.shown_sessions or not facts.sessions else ("random",)
    neg_why = "" if negatives != ("random",) else \
        "; the logs show no impressions, so a skipped item cannot be told apart: random negatives only"
    fixed = {"tuned": TUNED_TOWERS, "frozen": FROZEN_TOWERS, "none": NGRAM_TOWERS}
    if backbone != "auto":
        return (dataclasses.replace(fixed[backbone], negatives=negatives),
                f"--backbone {backbone} was asked for{neg_why}")
    costs = costs or CostModel.for_device(facts.device, facts.threads)
    # a triple per positive and kind of negative (hard from BM25, random from the catalog)
    triples = int(len(negatives) * (positives + facts.clicks) * (1.0 - validation_share))
    tune_s = triples / 64 / costs.tune_steps_per_s
    encode_s = facts.items / costs.encode_per_s
    cost = (f"~{triples} training triples (one tuning pass ~{tune_s:.0f} s), {facts.items} items to encode "
            f"(~{encode_s:.0f} s) on {facts.device} with {facts.threads} threads")
    if triples < MIN_TUNING_TRIPLES:
        return (dataclasses.replace(FROZEN_TOWERS, negatives=negatives),
                f"{cost}: too few triples to fine-tune MiniLM without overfitting it; heads on the frozen "
                f"backbone start from MiniLM's own ranking{neg_why}")
    budget = facts.time_budget_s
    if budget is None:
        return (dataclasses.replace(TUNED_TOWERS, negatives=negatives),
                f"{cost}, no time budget: MiniLM fine-tuned for one pass, then the heads (the recipe that wins "
                f"on the shared sets){neg_why}")
    stage = budget * STAGE_SHARES["tuned"]["retrieval"]
    heads_s = 0.1 * stage
    if encode_s > 0.6 * stage:
        return (dataclasses.replace(NGRAM_TOWERS, negatives=negatives),
                f"{cost}: encoding the catalog alone needs more than the retrieval stage's share of the "
                f"{budget:.0f} s budget ({stage:.0f} s), so hashed n-gram towers, no transformer{neg_why}")
    epochs = min(1.0, (stage - encode_s - heads_s) / tune_s) if tune_s > 0 else 1.0
    if epochs < MIN_TUNING_EPOCHS:
        return (dataclasses.replace(FROZEN_TOWERS, negatives=negatives),
                f"{cost}: the retrieval stage's {stage:.0f} s of the budget leave less than "
                f"{MIN_TUNING_EPOCHS:g} of a tuning pass, so heads on the frozen backbone{neg_why}")
    epochs = round(epochs, 2)
    how = "one pass" if epochs == 1.0 else f"{epochs:g} of a pass (what {stage:.0f} s of the budget allow)"
    return (dataclasses.replace(TUNED_TOWERS, backbone_epochs=epochs, negatives=negatives),
            f"{cost}: MiniLM fine-tuned for {how}, then the heads{neg_why}")


def choose_epoch_validation(facts: DataFacts, validation: str, share: float) -> tuple[float, str]:
    """Whether the towers hold out a tenth of their training queries to choose the best epoch."""
    queries = facts.judged_queries or facts.log_queries
    train_queries = queries if validation == "time" else round(queries * (1.0 - share))
    if train_queries >= EPOCH_CHOICE_QUERIES:
        return 0.1, (f"{train_queries} training queries: a tenth of them choose the towers' best epoch "
                     "(the untrained towers included)")
    return 0.0, (f"{train_queries} training queries, fewer than {EPOCH_CHOICE_QUERIES}: a tenth of them is too "
                 "few to choose an epoch on, so all of them train and the last epoch is kept")


def tuning_allowance(stage_s: float, facts: DataFacts, costs: CostModel | None = None) -> float:
    """Seconds of a retrieval stage's allowance the backbone tuning may use: what encoding the catalog
    and training the heads after it leave (a tenth of the stage for the heads), at least half the stage."""
    costs = costs or CostModel.for_device(facts.device, facts.threads)
    return max(0.5 * stage_s, 0.9 * stage_s - facts.items / costs.encode_per_s)


def choose_ranker_data(facts: DataFacts) -> tuple[str, float | None, str]:
    """What the ranker learns from, and the label of first-stage candidates nobody judged."""
    single_grade = len(facts.grades) == 1
    if facts.shown_sessions and facts.judged_queries:
        return "sessions+judgments", 0.0 if single_grade else None, (
            f"{facts.shown_sessions} sessions with impressions and clicks give position-corrected pairs; "
            "the judged queries add graded groups from the hybrid first stage")
    if facts.shown_sessions:
        return "sessions", None, (f"{facts.shown_sessions} sessions with impressions and clicks: pairs of "
                                  "preferred over skipped items, corrected for position")
    if facts.judged_queries:
        if single_grade:
            return "judgments", 0.0, ("judged queries through the hybrid first stage; every listed item is "
                                      "relevant, so an unlisted candidate gets grade 0")
        return "judgments", None, ("judged queries through the hybrid first stage, candidates ordered by grade; "
                                   "an unjudged candidate takes the lowest grade")
    return "clicks", 0.0, ("the logs show no impressions: each logged query's clicked items are its relevant "
                           "ones, run through the hybrid first stage, and an unclicked candidate gets grade 0")


def choose_recipe(facts: DataFacts, *, backbone: str = "auto", validation_share: float | None = None,
                  costs: CostModel | None = None) -> Recipe:
    """The recipe for these facts; `backbone` and `validation_share` override the automatic choice."""
    if facts.items < 1:
        raise ValueError("a recipe needs a catalog with items")
    if not facts.judged_queries and not facts.clicked_sessions:
        raise ValueError("a recipe needs judgments or logged sessions with clicks")
    grade_map, grade_why = choose_grade_map(facts)
    validation, share, validation_why = choose_validation(facts, validation_share)
    retrieval, retrieval_why = choose_retrieval(facts, backbone=backbone, positives=_positive_pairs(facts, grade_map),
                                                validation_share=share, costs=costs)
    epoch_share, epoch_why = choose_epoch_validation(facts, validation, share)
    ranker_data, unjudged, ranker_why = choose_ranker_data(facts)
    shares = STAGE_SHARES["tuned" if retrieval.backbone == "tuned" else "other"]
    described = facts.described_items
    reasons = {
        "retrieval": retrieval_why,
        "validation": validation_why,
        "epochs": epoch_why,
        "grades": grade_why,
        "ranker": ranker_why + "; the Siamese ranker and XGBoost train on the same groups and the one with the "
                  "better validation NDCG@10 serves",
        "descriptions": (f"{described} of {facts.items} items have a description: BM25 matches it, the towers "
                         "read title, brand and category, so the hybrid keeps what only a description says"
                         if described else "no item has a description: BM25 and the towers read the same fields"),
        "budget": ("no time budget" if facts.time_budget_s is None else
                   f"{facts.time_budget_s:.0f} s shared " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
                   + "; time a stage leaves goes to the next"),
    }
    return Recipe(retrieval=retrieval, validation=validation, validation_share=share, grade_map=grade_map,
                  epoch_validation_share=epoch_share, ranker_data=ranker_data, unjudged_grade=unjudged,
                  shares=dict(shares), reasons=reasons)
