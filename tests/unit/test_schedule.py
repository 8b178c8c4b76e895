"""The one training schedule: its learning-rate curve, what it refuses, how every trainer and every
training command uses it, and the flat records it leaves in a model directory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dsr.catalog import item_text
from dsr.commands.distill import student_config, train_command
from dsr.commands.train import backbone_config, retrieval, two_tower_config
from dsr.commands.train_ranker import ranker, siamese_config
from dsr.commands.train_teacher import teacher, teacher_config
from dsr.device import default_threads
from dsr.encoders.backbone_tuning import BACKBONE_SCHEDULE, BackboneTuneConfig, tune_backbone
from dsr.encoders.model import TwoTowerModel
from dsr.encoders.trainer import TWO_TOWER_SCHEDULE, TrainConfig, train_two_tower
from dsr.errors import InputError, UsageError
from dsr.jobs.recipe import TUNED_TOWERS
from dsr.logs.synthetic import make_world, simulate_sessions
from dsr.logs.triples import TripleConfig, build_triples
from dsr.reranker.distill import (
    STUDENT_SCHEDULE,
    TEACHER_SCHEDULE,
    GradedText,
    GradeScale,
    StudentTrainConfig,
    TeacherTrainConfig,
    train_student,
    train_teacher,
)
from dsr.reranker.features import FeatureConfig, FeatureExtractor
from dsr.reranker.groups import groups_from_sessions
from dsr.reranker.pairs import build_pairs
from dsr.reranker.trainer import RANKER_SCHEDULE, SiameseTrainConfig, train_siamese
from dsr.schedule import TrainSchedule, warmup_decay


def _lr_curve(schedule: TrainSchedule, total_steps: int, base_lrs: tuple[float, ...]) -> np.ndarray:
    """(steps + 1, groups): the learning rate each optimiser step runs at, and the one after the last."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in base_lrs]
    optimizer = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs, strict=True)])
    lr_schedule = warmup_decay(optimizer, schedule, total_steps)
    curve = []
    for _ in range(total_steps + 1):
        curve.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        lr_schedule.step()
    return np.array(curve)


# ---------------------------------------------------------------------------------------------------
# the learning-rate curve of the transformer fine-tunings
# ---------------------------------------------------------------------------------------------------

def test_warm_up_then_decay_follows_the_linear_formula_in_every_parameter_group():
    # 10 steps, warm-up share 0.3 -> w = 3 warm-up steps; step s runs at s / w while s < w,
    # then at (10 - s) / (10 - w) = (10 - s) / 7, reaching 0 after the last step
    schedule = TrainSchedule(epochs=1, batch_size=8, lr=1.0, warmup_share=0.3)
    expected = np.array([0, 1 / 3, 2 / 3, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7, 0])
    curve = _lr_curve(schedule, 10, (4e-5, 1e-3))  # the teacher's transformer and head learning rates
    np.testing.assert_allclose(curve[:, 0], 4e-5 * expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(curve[:, 1], 1e-3 * expected, rtol=1e-9, atol=1e-15)


def test_a_run_too_short_for_a_warm_up_step_starts_at_full_rate_and_decays():
    # 9 steps x 0.1 rounds down to no warm-up step: step s runs at (9 - s) / 9
    schedule = TrainSchedule(epochs=1, batch_size=8, lr=1.0, warmup_share=0.1)
    curve = _lr_curve(schedule, 9, (2.0,))[:, 0]
    np.testing.assert_allclose(curve, 2.0 * (9 - np.arange(10)) / 9, rtol=1e-9, atol=1e-15)


# ---------------------------------------------------------------------------------------------------
# what a schedule, and each trainer's config, refuses
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, why", [
    ({"epochs": 0}, "epochs > 0"),
    ({"batch_size": 0}, "batch size >= 1"),
    ({"lr": 0.0}, "lr > 0"),
    ({"weight_decay": -0.1}, "weight decay >= 0"),
    ({"warmup_share": 1.0}, r"warm-up share in \[0, 1\)"),
    ({"patience": 0}, "patience >= 1"),
    ({"threads": 0}, "threads >= 1"),
])
def test_a_schedule_that_cannot_train_is_refused(changes, why):
    with pytest.raises(InputError, match=why):
        TrainSchedule(**{"epochs": 1, "batch_size": 8, "lr": 1e-3, **changes})


def test_a_trainer_refuses_the_settings_it_would_ignore():
    with pytest.raises(InputError, match="constant learning rate"):
        TrainConfig(TWO_TOWER_SCHEDULE.replace(warmup_share=0.1))
    with pytest.raises(InputError, match="runs every epoch"):
        TrainConfig(TWO_TOWER_SCHEDULE.replace(patience=2))
    with pytest.raises(InputError, match="whole epochs"):
        SiameseTrainConfig(RANKER_SCHEDULE.replace(epochs=1.5))
    with pytest.raises(InputError, match="constant learning rate"):
        StudentTrainConfig(STUDENT_SCHEDULE.replace(warmup_share=0.1))
    with pytest.raises(UsageError, match="no patience"):
        TeacherTrainConfig(TEACHER_SCHEDULE.replace(patience=1))
    with pytest.raises(InputError, match="no patience"):
        BackboneTuneConfig(BACKBONE_SCHEDULE.replace(patience=1))
    assert BackboneTuneConfig(BACKBONE_SCHEDULE.replace(epochs=0.5)).schedule.epochs == 0.5  # steps, not epochs


# ---------------------------------------------------------------------------------------------------
# one schedule object drives every trainer
# ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_one_schedule_object_drives_every_trainer():
    shared = TrainSchedule(epochs=2, batch_size=8, lr=1e-3, seed=5, progress=False)
    world = make_world(n_items=120, n_queries=20, n_users=5, seed=4)
    sessions = simulate_sessions(world, 400, seed=4)
    ids = [str(row["id"]) for row in world.catalog]
    triples = build_triples(sessions, ids, TripleConfig(negatives=("hard", "random")))
    catalog = world.items_by_id
    pairs, _ = build_pairs(sessions, known_ids=catalog)
    groups = groups_from_sessions(pairs, catalog)
    extractor = FeatureExtractor(FeatureConfig(buckets=1 << 10), catalog)
    configs = [TrainConfig(shared), BackboneTuneConfig(shared), SiameseTrainConfig(shared, dim=8, hidden=(8, 8, 4)),
               TeacherTrainConfig(shared, max_length=16, max_pairs=None, freeze_layers=5),
               StudentTrainConfig(shared, dim=8, hidden=(8, 8, 4))]
    assert all(c.schedule is shared for c in configs)
    two_tower, backbone, siamese, teacher_cfg, student = configs

    towers = TwoTowerModel.build(world.catalog, text_buckets=1 << 10, hidden=(16,), dim=8, device="cpu")
    assert len(train_two_tower(towers, triples[:64], world.catalog, two_tower).epochs) == 2

    _, tuned = tune_backbone(triples[:12], {i: item_text(catalog[i]) for i in ids}, backbone, device="cpu")
    assert tuned.steps == math.ceil(12 * 2 / 8)

    # no patience: every epoch runs, validated four times each
    ranker, summary = train_siamese(groups[:40], groups[40:50], extractor, siamese)
    assert summary.epochs_run == 2 and len(summary.history) == 2 * 4
    again, _ = train_siamese(groups[:40], groups[40:50], extractor, siamese)  # the seed makes the run repeatable
    g = groups[50]
    np.testing.assert_array_equal(ranker.score(g.query, g.candidates, g.user),
                                  again.score(g.query, g.candidates, g.user))

    examples = [GradedText(q.text, item_text(catalog[i]), float(grade))
                for q in world.queries[:4] for i, grade in sorted(q.relevant.items())[:4]]
    _, report = train_teacher(examples, GradeScale(0, 3, 4), teacher_cfg)
    assert report.pairs == len(examples) and report.steps == 2 * math.ceil(len(examples) / 8)

    _, distilled = train_student(groups[:40], extractor, student)
    assert distilled.epochs_run == 2 and len(distilled.history) == 2 * 4


# ---------------------------------------------------------------------------------------------------
# the training commands map their options onto the schedule, with the library's defaults
# ---------------------------------------------------------------------------------------------------

def _defaults(command) -> dict:
    return {p.name: p.default for p in command.params}


def test_dsr_train_retrieval_defaults_are_the_winning_recipe_on_the_trainers_schedules():
    d = _defaults(retrieval)
    assert (d["backbone"], d["tune_backbone"], d["hidden"]) == ("minilm", True, "256")
    train = two_tower_config(**{k: d[k] for k in ("epochs", "batch_size", "lr", "loss", "margin", "in_batch",
                                                  "seed", "threads", "progress")})
    threads = default_threads()
    assert train == TrainConfig(TWO_TOWER_SCHEDULE.replace(epochs=TUNED_TOWERS.epochs, lr=TUNED_TOWERS.lr,
                                                           threads=threads), loss=TUNED_TOWERS.loss)
    tune = backbone_config(epochs=d["backbone_epochs"], lr=d["backbone_lr"], batch_size=d["backbone_batch_size"],
                           seed=d["seed"], threads=d["threads"], progress=d["progress"])
    # --threads covers the tuning too
    assert tune == BackboneTuneConfig(BACKBONE_SCHEDULE.replace(epochs=TUNED_TOWERS.backbone_epochs, threads=threads))
    assert two_tower_config(**{**{k: d[k] for k in ("epochs", "batch_size", "lr", "loss", "margin", "in_batch",
                                                     "seed", "progress")}, "threads": 0}).schedule.threads is None


def test_dsr_train_ranker_defaults_are_the_ranker_schedule_on_the_default_threads():
    d = _defaults(ranker)
    cfg = siamese_config(**{k: d[k] for k in ("feature_set", "epochs", "patience", "batch_size", "lr", "seed",
                                              "threads", "progress")})
    assert cfg == SiameseTrainConfig(RANKER_SCHEDULE.replace(threads=default_threads()))


def test_dsr_train_teacher_defaults_are_the_teacher_schedule_with_a_progress_bar():
    d = _defaults(teacher)
    cfg = teacher_config(**{k: d[k] for k in ("max_length", "max_pairs", "epochs", "batch_size", "lr",
                                              "freeze_layers", "device", "seed", "progress")})
    assert cfg == TeacherTrainConfig(TEACHER_SCHEDULE.replace(progress=True))


def test_dsr_distill_train_defaults_are_the_student_schedule_with_a_progress_bar():
    d = _defaults(train_command)
    cfg = student_config(**{k: d[k] for k in ("epochs", "batch_size", "lr", "dim", "hidden", "patience", "seed",
                                              "progress")})
    assert cfg == StudentTrainConfig(STUDENT_SCHEDULE.replace(progress=True))
    with pytest.raises(UsageError, match="three positive sizes"):
        student_config(**{**{k: d[k] for k in ("epochs", "batch_size", "lr", "dim", "patience", "seed", "progress")},
                          "hidden": "64,32"})


# ---------------------------------------------------------------------------------------------------
# the records a model directory keeps
# ---------------------------------------------------------------------------------------------------

# `info.train` and `info.backbone_tuning` as models trained before the schedule existed carry them
SAVED_TRAIN = {"batch_size": 256, "epochs": 1, "eval_k": 100, "in_batch": True, "loss": "hinge", "lr": 0.002,
               "margin": 0.3, "progress": False, "seed": 0, "temperature": 0.05, "threads": 1, "weight_decay": 0.0}
SAVED_BACKBONE = {"epochs": 1.0, "batch_size": 64, "lr": 5e-05, "warmup_share": 0.1, "temperature": 0.05,
                  "max_seq_length": 48, "seed": 0, "threads": 1, "progress": True,
                  "steps": 19, "seconds": 12.5, "loss": [2.1, 0.4]}


def test_training_records_keep_their_flat_layout_and_read_back():
    train = TrainConfig.from_config(SAVED_TRAIN)
    assert train == TrainConfig(TWO_TOWER_SCHEDULE.replace(epochs=1, progress=False))
    assert train.to_config() == SAVED_TRAIN
    tune = BackboneTuneConfig.from_config(SAVED_BACKBONE)  # the run's figures beside the settings are skipped
    assert tune == BackboneTuneConfig(BACKBONE_SCHEDULE.replace(threads=1))
    assert tune.to_config() == {k: v for k, v in SAVED_BACKBONE.items() if k not in ("steps", "seconds", "loss")}
    assert TrainConfig.from_config({}) == TrainConfig()
