"""Fine-tuning the MiniLM backbone itself on training triples, before the tower heads are trained.

Heads over a frozen backbone can only re-weight what the backbone already separates; on real shop
queries (abbreviations, misspellings, part numbers, "4*8 beadboard") the backbone has to learn the
shop's vocabulary, so its transformer weights are trained too. The loss is the in-batch sampled
softmax of the DSR paper's softmax option: each query against every positive and every triple
negative in the batch, with the triple's own negative (a hard one when the data has them) as an extra
column. A column that is a known positive of the row's query (the same item, or another item judged
or clicked for that query) is masked out, so it never counts as a negative.

Query and item share the backbone (a Siamese bi-encoder); the DSR towers on top stay separate.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsr.device import resolve_device
from dsr.errors import InputError
from dsr.logs.triples import Triple
from dsr.schedule import TrainSchedule, clipped_step, warmup_decay

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


BACKBONE_SCHEDULE = TrainSchedule(epochs=1.0, batch_size=64, lr=5e-5, weight_decay=0.01, warmup_share=0.1)
_OWN_FIELDS = ("temperature", "max_seq_length", "start")


@dataclass(frozen=True)
class BackboneTuneConfig:
    schedule: TrainSchedule = BACKBONE_SCHEDULE  # epochs may be a fraction: 0.5 = half the triples
    temperature: float = 0.05
    max_seq_length: int = 48
    start: str | None = None  # a tuned backbone folder (a model directory's `backbone/`) to go on from

    def __post_init__(self) -> None:
        if self.schedule.batch_size < 2 or self.temperature <= 0:
            raise InputError("backbone tuning needs a batch size >= 2 and temperature > 0")
        if self.schedule.patience is not None:
            raise InputError("backbone tuning has no validation to stop early on: its schedule takes no patience")

    def to_config(self) -> dict[str, Any]:
        """The flat record stored in a model's `info.backbone_tuning`."""
        s = self.schedule
        return {"epochs": s.epochs, "batch_size": s.batch_size, "lr": s.lr, "warmup_share": s.warmup_share,
                "temperature": self.temperature, "max_seq_length": self.max_seq_length, "seed": s.seed,
                "threads": s.threads, "progress": s.progress, **({"start": self.start} if self.start else {})}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BackboneTuneConfig:
        """Read `to_config()`'s record back; fields it lacks keep their defaults."""
        return cls(schedule=BACKBONE_SCHEDULE.updated(config), **{k: config[k] for k in _OWN_FIELDS if k in config})


@dataclass(frozen=True)
class BackboneTuneResult:
    steps: int
    triples: int
    seconds: float
    first_loss: float
    last_loss: float  # mean over the last 10% of steps

    @property
    def triples_per_s(self) -> float:
        return self.triples / self.seconds if self.seconds > 0 else 0.0


def fresh_minilm(device: str | None = None, start: str | Path | None = None) -> SentenceTransformer:
    """A private, trainable copy of the offline all-MiniLM-L6-v2 (never the shared cached one), or of the
    tuned backbone in `start` (checked as any shipped backbone is: safetensors and known modules only)."""
    from sentence_transformers import SentenceTransformer

    from dsr.encoders.backbone import check_backbone_dir, minilm_path

    folder = check_backbone_dir(Path(start)) if start is not None else minilm_path()
    return SentenceTransformer(str(folder), device=str(resolve_device(device)), local_files_only=True,
                               trust_remote_code=False)


def tune_backbone(
    triples: Sequence[Triple],
    item_texts: Mapping[str, str],
    config: BackboneTuneConfig | None = None,
    *,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[SentenceTransformer, BackboneTuneResult]:
    """A fine-tuned MiniLM copy; `item_texts` maps item id -> the text the item tower reads."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    config = config or BackboneTuneConfig()
    schedule = config.schedule
    say = log or (lambda _m: None)
    if schedule.threads:
        torch.set_num_threads(schedule.threads)
    torch.manual_seed(schedule.seed)
    rng = random.Random(schedule.seed)
    usable = [t for t in triples if t.positive in item_texts and (t.negative is None or t.negative in item_texts)]
    if not usable:
        raise InputError("no training triple refers to catalog items: nothing to tune the backbone on")
    positives: dict[str, set[str]] = defaultdict(set)
    for t in usable:
        positives[t.query].add(t.positive)
    all_ids = list(item_texts)

    model = fresh_minilm(device, config.start)
    if config.start is not None:
        say(f"tuning goes on from the backbone in {config.start}")
    model.max_seq_length = config.max_seq_length
    batch_size = schedule.batch_size
    steps = max(1, math.ceil(len(usable) * schedule.epochs / batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    lr_schedule = warmup_decay(optimizer, schedule, steps)
    dev = model.device
    tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 5

    def embed(texts: list[str]) -> torch.Tensor:
        features = tokenize(texts)
        features = {k: v.to(dev) if hasattr(v, "to") else v for k, v in features.items()}
        return F.normalize(model(features)["sentence_embedding"], dim=-1)

    order: list[Triple] = []
    losses: list[float] = []
    model.train()
    started = time.perf_counter()
    with tqdm(total=steps, desc="tuning backbone", unit="step", disable=not schedule.progress) as bar:
        for _step in range(steps):
            if len(order) < batch_size:
                more = list(usable)
                rng.shuffle(more)
                order += more
            batch, order = order[:batch_size], order[batch_size:]
            negatives = [t.negative if t.negative is not None else rng.choice(all_ids) for t in batch]
            columns = [t.positive for t in batch] + negatives
            q = embed([t.query for t in batch])
            d = embed([item_texts[i] for i in columns])
            logits = q @ d.T / config.temperature
            mask = torch.tensor([[c != r and columns[c] in positives[t.query] for c in range(len(columns))]
                                 for r, t in enumerate(batch)], device=dev)
            logits = logits.masked_fill(mask, -1e4)
            loss = F.cross_entropy(logits, torch.arange(len(batch), device=dev))
            losses.append(clipped_step(loss, model, optimizer, lr_schedule))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if schedule.out_of_time() and len(losses) < steps:
                say(f"backbone tuning stopped at the time budget after {len(losses)} of {steps} steps")
                break
    model.eval()
    seconds = time.perf_counter() - started
    tail = losses[-max(1, len(losses) // 10):]
    steps = len(losses)
    result = BackboneTuneResult(steps=steps, triples=steps * batch_size, seconds=seconds,
                                first_loss=losses[0], last_loss=sum(tail) / len(tail))
    say(f"backbone tuned: {steps} steps of {batch_size} in {seconds:.0f}s, "
        f"loss {result.first_loss:.3f} -> {result.last_loss:.3f}")
    return model, result


def save_backbone(model: SentenceTransformer, folder: Path) -> None:
    """Write a tuned backbone as safetensors + JSON configs (sentence-transformers' own layout)."""
    model.save(str(folder), safe_serialization=True)
    readme = folder / "README.md"
    if readme.exists():  # a generated model card with training details dsr does not vouch for
        readme.unlink()
