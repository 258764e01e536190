"""evaluate stage: models/model.npz + data/processed/test.npz -> metrics.json and reports/evaluate/."""

from pathlib import Path

import numpy as np

import cnn
from pipeline import atomic, dataset, figures, predict


def classification_report(true: np.ndarray, pred: np.ndarray, classes: list[int]) -> dict[str, dict]:
    """Per-class precision, recall, F1 and support from the confusion matrix; true/pred (N,) hold digit labels."""
    counts = figures.confusion_counts(true, pred, classes)
    hits, actual, predicted = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(len(classes)), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(len(classes)), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(len(classes)), where=both > 0)
    return {
        str(digit): {
            "precision": round(float(precision[i]), 6),
            "recall": round(float(recall[i]), 6),
            "f1": round(float(f1[i]), 6),
            "support": int(actual[i]),
        }
        for i, digit in enumerate(classes)
    }


def roc_inputs(target: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score) pairs for a ROC curve: the second class against the first for two classes,
    micro-averaged one-vs-rest over every output for more (target one-hot and class probabilities (N, K))."""
    if target.shape[1] == 2:
        return target[:, 1] == 1, probs[:, 1]
    return target.ravel() == 1, probs.ravel()


def csv_text(columns: dict[str, np.ndarray]) -> str:
    """CSV of equal-length columns; floats at 12 significant digits, above the last-bit noise of libm."""
    rows = zip(*(values.tolist() for values in columns.values()), strict=True)
    cell = lambda v: f"{v:.12g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join([",".join(columns)] + [",".join(map(cell, row)) for row in rows]) + "\n"


def run(model_path: Path, data_path: Path, metrics_path: Path, report_dir: Path) -> dict:
    """Score the model on the test split; write metrics, predictions and ROC CSVs, and the figures."""
    net = predict.load_model(model_path)  # cnn.load plus the checks a pipeline model needs (meta.classes)
    classes = [int(c) for c in net.meta["classes"]]
    test = dataset.load(data_path, classes=classes)
    outputs = net.predict(test.images)
    loss = cnn.LOSSES[net.meta.get("loss", "binary_cross_entropy")]()
    target = cnn.one_hot(test.class_index, len(classes))
    pred_index = outputs.argmax(axis=1)
    pred = np.asarray(classes)[pred_index]
    metrics = {
        "accuracy": round(float(np.mean(pred == test.labels)), 6),
        "loss": round(float(loss.value(target.astype(outputs.dtype), outputs)), 6),
        "test_images": len(test.labels),
        "per_class": classification_report(test.labels, pred, classes),
    }
    probs = predict.probabilities(net, outputs)
    atomic.write_text(report_dir / "predictions.csv", csv_text({"actual": test.labels, "predicted": pred}))
    fig_dir = report_dir / "figures"
    positive, score = roc_inputs(target, probs)
    fpr, tpr, thresholds = figures.roc_points(positive, score)
    atomic.write_text(report_dir / "roc.csv", csv_text({"fpr": fpr, "tpr": tpr, "threshold": thresholds}))
    metrics["roc_auc"] = round(figures.roc_curve(positive, score, fig_dir / "roc.png"), 6)
    figures.confusion_matrix(test.labels, pred, classes, fig_dir / "confusion_matrix.png")
    figures.misclassified_grid(test.images[:, 0], test.labels, pred, probs.max(axis=1), fig_dir / "misclassified.png")
    conv = [layer for layer in net.layers if isinstance(layer, cnn.Convolutional)]
    if conv:
        figures.kernels(conv[0].params["kernels"], fig_dir / "kernels.png")
        first = [int(np.flatnonzero(test.labels == c)[0]) for c in classes if np.any(test.labels == c)]
        figures.feature_maps(net, test.images[first], test.labels[first], fig_dir / "feature_maps.png")
    atomic.write_json(metrics_path, metrics)
    return metrics
