"""Knowledge distillation: a slow cross-encoder teacher distilled into the fast Siamese ranker.

`teacher` (cross-encoder on MiniLM, soft-target classifier over grades) -> `augment` (teacher labels
many generated query-item pairs, resumable shards) -> `student` (the served ranker tower trained
with `MarginMSELoss` on the teacher's margins). Only the student is served.
"""

from dsr.reranker.distill.augment import (
    AugmentConfig,
    AugmentReport,
    BackendCandidates,
    CandidateSource,
    NeighbourCandidates,
    ScoredPair,
    augment,
    read_scored,
)
from dsr.reranker.distill.grades import GradeScale
from dsr.reranker.distill.margin_mse import MarginMSELoss
from dsr.reranker.distill.soft_ce import SoftTargetCrossEntropy
from dsr.reranker.distill.student import (
    STUDENT_SCHEDULE,
    StudentTrainConfig,
    StudentTrainSummary,
    hold_out_validation,
    margin_groups,
    teacher_margins,
    train_student,
)
from dsr.reranker.distill.teacher import CrossEncoderTeacher, minilm_dir, resolve_device
from dsr.reranker.distill.teacher_train import (
    TEACHER_SCHEDULE,
    GradedText,
    TeacherTrainConfig,
    TeacherTrainReport,
    train_teacher,
)
from dsr.reranker.distill.title_queries import queries_from_titles

__all__ = [
    "STUDENT_SCHEDULE",
    "TEACHER_SCHEDULE",
    "AugmentConfig",
    "AugmentReport",
    "BackendCandidates",
    "CandidateSource",
    "CrossEncoderTeacher",
    "GradeScale",
    "GradedText",
    "MarginMSELoss",
    "NeighbourCandidates",
    "ScoredPair",
    "SoftTargetCrossEntropy",
    "StudentTrainConfig",
    "StudentTrainSummary",
    "TeacherTrainConfig",
    "TeacherTrainReport",
    "augment",
    "hold_out_validation",
    "margin_groups",
    "minilm_dir",
    "queries_from_titles",
    "read_scored",
    "resolve_device",
    "teacher_margins",
    "train_student",
    "train_teacher",
]
