"""pipeline.metrics against independent sources: hand-worked confusion matrices, brute-force curves, and AUC
as the Mann-Whitney U statistic."""

import numpy as np
import pytest

from pipeline import metrics


def test_confusion_counts_rows_true_columns_predicted():
    counts = metrics.confusion_counts(np.array([3, 3, 5, 5, 8]), np.array([3, 5, 5, 5, 3]), [3, 5, 8])
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match=r"\[9\]"):
        metrics.confusion_counts(np.array([3, 9]), np.array([3, 3]), [3, 5])


def test_per_class_precision_recall_f1_on_a_matrix_where_they_differ():
    # rows true, columns predicted. Digit 3: 8 images, 6 found; predicted 3 ten times, 6 right.
    counts = np.array([[6, 2, 0], [3, 7, 0], [1, 0, 1]])
    table = metrics.per_class(counts, [3, 5, 8]).set_index("digit")
    # by hand: precision = right / predicted as it (column), recall = right / images of it (row)
    assert table.loc[3, "precision"] == pytest.approx(6 / 10)
    assert table.loc[3, "recall"] == pytest.approx(6 / 8)
    assert table.loc[5, "precision"] == pytest.approx(7 / 9)
    assert table.loc[5, "recall"] == pytest.approx(7 / 10)
    assert table.loc[8, "precision"] == pytest.approx(1 / 1)
    assert table.loc[8, "recall"] == pytest.approx(1 / 2)
    assert table.loc[3, "f1"] == pytest.approx(2 / (1 / 0.6 + 1 / 0.75))  # harmonic mean
    assert table.loc[8, "f1"] == pytest.approx(2 / (1 / 1 + 1 / 0.5))
    assert table["support"].tolist() == [8, 10, 2]


def test_per_class_gives_zero_where_nothing_was_predicted_or_present():
    table = metrics.per_class(np.array([[2, 0], [1, 0]]), [0, 1]).set_index("digit")
    assert (table.loc[1, "precision"], table.loc[1, "recall"], table.loc[1, "f1"]) == (0, 0, 0)


def test_roc_points_on_a_known_case():
    roc = metrics.roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert roc["fpr"].tolist() == [0, 0, 0.5, 0.5, 1]
    assert roc["tpr"].tolist() == [0, 0.5, 0.5, 1, 1]
    assert roc["threshold"].tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    assert metrics.auc(roc["fpr"], roc["tpr"]) == 0.75


def test_roc_ties_make_one_point():
    roc = metrics.roc_points(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.9, 0.1]))
    assert roc["threshold"].tolist() == [np.inf, 0.9, 0.5, 0.1]
    assert (roc["fpr"].tolist(), roc["tpr"].tolist()) == ([0, 0, 0.5, 1], [0, 0.5, 1, 1])


def mann_whitney_auc(true01: np.ndarray, score: np.ndarray) -> float:
    """U / (n_pos * n_neg) from the rank sum of the positives (average ranks for ties)."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score):  # ties share the mean of their ranks
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = int(true01.sum()), int((1 - true01).sum())
    u = ranks[true01 == 1].sum() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_is_the_mann_whitney_u_statistic(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) * 0.7 + true * 0.3, 2)  # rounding makes ties
    roc = metrics.roc_points(true, score)
    assert metrics.auc(roc["fpr"], roc["tpr"]) == pytest.approx(mann_whitney_auc(true, score), abs=1e-12)


def test_precision_recall_points_match_a_brute_force_count_at_every_threshold():
    rng = np.random.default_rng(3)
    true = rng.integers(0, 2, 60)
    score = np.round(rng.random(60), 1)
    curve = metrics.precision_recall_points(true, score)
    assert (curve["recall"].iloc[0], curve["precision"].iloc[0], curve["threshold"].iloc[0]) == (0, 1, np.inf)
    assert curve["threshold"].iloc[1:].tolist() == sorted(set(score.tolist()), reverse=True)
    for _, row in curve.iloc[1:].iterrows():
        chosen = score >= row["threshold"]
        assert row["precision"] == pytest.approx(np.sum(chosen & (true == 1)) / np.sum(chosen))
        assert row["recall"] == pytest.approx(np.sum(chosen & (true == 1)) / np.sum(true == 1))


def test_average_precision_by_hand():
    # scores 0.9 (pos), 0.8 (neg), 0.7 (pos): precision at the positives 1/1 and 2/3, recall steps 1/2 each
    curve = metrics.precision_recall_points(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7]))
    assert metrics.average_precision(curve) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_curves_need_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_points(np.ones(5), np.linspace(0, 1, 5))


def test_one_vs_rest_uses_the_second_class_for_two_and_every_output_for_more():
    target = np.eye(2)[[0, 1, 1]]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    positive, score = metrics.one_vs_rest(target, probs)
    assert positive.tolist() == [False, True, True] and score.tolist() == [0.1, 0.8, 0.4]
    target3 = np.eye(3)[[0, 2]]
    positive, score = metrics.one_vs_rest(target3, np.arange(6.0).reshape(2, 3))
    assert positive.tolist() == [True, False, False, False, False, True]
    assert score.tolist() == [0, 1, 2, 3, 4, 5]
