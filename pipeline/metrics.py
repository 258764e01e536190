"""Evaluation metrics as plain functions of labels and scores: confusion matrix, per-class precision/recall/F1,
ROC and precision-recall curves, areas under them. No drawing, no files: figures.py draws, evaluate.py writes.

Conventions: labels are (N,) integer arrays of digits; a two-class score is (N,) floats, higher meaning "more
positive"; curves are pandas DataFrames with one row per distinct threshold, highest threshold first.
"""

import numpy as np
import pandas as pd


def confusion_counts(true: np.ndarray, pred: np.ndarray, classes: list[int]) -> np.ndarray:
    """(K, K) int counts: row = true class, column = predicted class, in the order of `classes`."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = np.setdiff1d(np.concatenate([true, pred]), list(index))
    if unknown.size:
        raise ValueError(f"labels {unknown.tolist()} are not among the classes {list(classes)}")
    lookup = np.zeros(max(index) + 1, dtype=np.int64)
    lookup[list(index)] = list(index.values())
    k = len(classes)
    flat = lookup[np.asarray(true)] * k + lookup[np.asarray(pred)]
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (no prediction or no image of a class)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def per_class(counts: np.ndarray, classes: list[int]) -> pd.DataFrame:
    """One row per class of a confusion matrix (rows true, columns predicted): digit, precision (of the
    images predicted as the digit, the share that are it), recall (of the images of the digit, the share
    found), F1 (their harmonic mean) and support (images of the digit). A ratio with nothing to divide is 0."""
    counts = np.asarray(counts)
    hits = np.diag(counts)
    precision = _ratio(hits, counts.sum(axis=0))
    recall = _ratio(hits, counts.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    return pd.DataFrame(
        {"digit": classes, "precision": precision, "recall": recall, "f1": f1, "support": counts.sum(axis=1)}
    )


def _threshold_counts(true01: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Cumulative (true positives, false positives, threshold) at each distinct score, highest first,
    counting an image as positive when its score >= the threshold; and the numbers of positives, negatives."""
    true01 = np.asarray(true01).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    if true01.shape != score.shape or true01.ndim != 1:
        raise ValueError(f"true01 and score must be (N,) arrays of one length, got {true01.shape} {score.shape}")
    positives, negatives = int(true01.sum()), int((~true01).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC or precision-recall curve needs both classes among the true labels")
    order = np.argsort(-score, kind="stable")
    score, true01 = score[order], true01[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    tp = np.cumsum(true01)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return tp, fp, score[last_of_tie], positives, negatives


def roc_points(true01: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """ROC curve of a two-class problem: columns fpr, tpr, threshold, from (0, 0) at threshold inf to (1, 1).

    true01 (N,) is 1 for the positive class; tied scores make one point."""
    tp, fp, thresholds, positives, negatives = _threshold_counts(true01, score)
    return pd.DataFrame(
        {"fpr": np.r_[0.0, fp / negatives], "tpr": np.r_[0.0, tp / positives], "threshold": np.r_[np.inf, thresholds]}
    )


def precision_recall_points(true01: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Precision-recall curve: columns recall, precision, threshold, one row per distinct score (highest
    first), starting at recall 0, precision 1 (threshold inf: nothing predicted positive)."""
    tp, fp, thresholds, positives, _ = _threshold_counts(true01, score)
    return pd.DataFrame(
        {
            "recall": np.r_[0.0, tp / positives],
            "precision": np.r_[1.0, tp / (tp + fp)],
            "threshold": np.r_[np.inf, thresholds],
        }
    )


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve through the points (x, y), x non-decreasing (trapezoids)."""
    return float(np.trapezoid(np.asarray(y, float), np.asarray(x, float)))


def average_precision(curve: pd.DataFrame) -> float:
    """Area under a precision-recall curve as a step function: sum of (recall step) x precision there."""
    return float(np.sum(np.diff(curve["recall"].to_numpy()) * curve["precision"].to_numpy()[1:]))


def one_vs_rest(target: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score) pairs for one curve: the second class against the first for two classes,
    micro-averaged one-vs-rest over every output for more; target one-hot and probs are (N, K)."""
    if target.shape[1] == 2:
        return target[:, 1] == 1, probs[:, 1]
    return target.ravel() == 1, probs.ravel()
