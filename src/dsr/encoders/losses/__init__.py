"""Training losses for the two towers, one small module per file.

Both take a score matrix `scores[b, c] = Q(q_b) . S(candidate_c)` over the batch's candidate items,
the column of each row's positive, a boolean mask of the columns that are negatives for that row
(explicit hard/random negatives and, if enabled, the other rows' positives), and row weights.
"""

from dsr.encoders.losses.hinge import HingeLoss
from dsr.encoders.losses.in_batch_softmax import InBatchSoftmaxLoss

LOSSES = {"hinge": HingeLoss, "softmax": InBatchSoftmaxLoss}

__all__ = ["LOSSES", "HingeLoss", "InBatchSoftmaxLoss"]
