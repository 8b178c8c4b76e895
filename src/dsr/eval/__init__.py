"""dsr.eval: judgments loaders, ranking metrics, the pipelines `dsr eval` compares, and the report."""

from dsr.eval.dataset import EvalDataset, Split, datasets_root, hash_split
from dsr.eval.loaders import LOADERS, load_dataset, load_generic
from dsr.eval.metrics import Evaluation, bootstrap_ci, compare_runs, evaluate_run

__all__ = [
    "LOADERS",
    "EvalDataset",
    "Evaluation",
    "Split",
    "bootstrap_ci",
    "compare_runs",
    "datasets_root",
    "evaluate_run",
    "hash_split",
    "load_dataset",
    "load_generic",
]
