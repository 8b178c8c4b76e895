"""Re-ranking metrics over one query's candidates: session AUC (as in DPR) and NDCG@k.

Session AUC is the fraction of (preferred, non-preferred) pairs of a session that the scores put
in the right order, ties counting one half, averaged over sessions that have at least one such pair.
NDCG@k uses linear gains (the label itself: e.g. ordered 3 / cart 2 / click 1 / skip 0, or a judged
grade - 1) and the ideal order of the same candidates; ties in the scores keep the input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Values = Sequence[float] | np.ndarray  # one group's scores or labels, a list or an array


def session_auc(scores: Values, labels: Values) -> float | None:
    """Correctly ordered share of the pairs with different labels; None when there is none."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    higher = y[:, None] > y[None, :]
    n = higher.sum()
    if n == 0:
        return None
    diff = s[:, None] - s[None, :]
    correct = (diff > 0)[higher].sum() + 0.5 * (diff == 0)[higher].sum()
    return float(correct / n)


def ndcg_at_k(scores: Values, labels: Values, k: int) -> float | None:
    """NDCG@k of ordering the candidates by score; None when no candidate has a positive gain."""
    y = np.asarray(labels, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.sort(y)[::-1][:k]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    if idcg <= 0:
        return None
    return float((y[order] * discounts[: len(order)]).sum() / idcg)


def mean_over_groups(
    scores: Sequence[Values], labels: Sequence[Values], *,
    k: Sequence[int] = (5,)
) -> dict[str, float]:
    """`session_auc` and `ndcg@k` averaged over the groups where each is defined."""
    aucs = [a for s, y in zip(scores, labels, strict=True) if (a := session_auc(s, y)) is not None]
    out = {"session_auc": float(np.mean(aucs)) if aucs else float("nan"), "groups": len(aucs)}
    for kk in k:
        vals = [v for s, y in zip(scores, labels, strict=True) if (v := ndcg_at_k(s, y, kk)) is not None]
        out[f"ndcg@{kk}"] = float(np.mean(vals)) if vals else float("nan")
    return out
