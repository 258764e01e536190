"""evaluate stage: models/model.npz + data/processed/test.npz -> metrics.json and reports/evaluate/."""

from pathlib import Path

import numpy as np

import cnn
from pipeline import atomic, dataset, figures


def classification_report(true: np.ndarray, pred: np.ndarray, classes: list[int]) -> dict[str, dict]:
    """Per-class precision, recall, F1 and support; true/pred (N,) hold digit labels."""
    report = {}
    for digit in classes:
        tp = int(np.sum((pred == digit) & (true == digit)))
        predicted, actual = int(np.sum(pred == digit)), int(np.sum(true == digit))
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[str(digit)] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": actual,
        }
    return report


def roc_inputs(target: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score) pairs for a ROC curve: the second class against the first for two classes,
    micro-averaged one-vs-rest over every output for more (target one-hot and outputs (N, K))."""
    score = outputs / outputs.sum(axis=1, keepdims=True)
    if target.shape[1] == 2:
        return target[:, 1] == 1, score[:, 1]
    return target.ravel() == 1, score.ravel()


def csv_text(columns: dict[str, np.ndarray]) -> str:
    rows = zip(*(values.tolist() for values in columns.values()), strict=True)
    return "\n".join([",".join(columns)] + [",".join(map(str, row)) for row in rows]) + "\n"


def run(model_path: Path, data_path: Path, metrics_path: Path, report_dir: Path) -> dict:
    """Score the model on the test split; write metrics, predictions and ROC CSVs, and the figures."""
    net = cnn.load(model_path)
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
    confidence = outputs.max(axis=1) / outputs.sum(axis=1)
    atomic.write_text(report_dir / "predictions.csv", csv_text({"actual": test.labels, "predicted": pred}))
    fig_dir = report_dir / "figures"
    positive, score = roc_inputs(target, outputs)
    fpr, tpr, thresholds = figures.roc_points(positive, score)
    atomic.write_text(report_dir / "roc.csv", csv_text({"fpr": fpr, "tpr": tpr, "threshold": thresholds}))
    metrics["roc_auc"] = round(figures.roc_curve(positive, score, fig_dir / "roc.png"), 6)
    figures.confusion_matrix(test.labels, pred, classes, fig_dir / "confusion_matrix.png")
    figures.misclassified_grid(test.images[:, 0], test.labels, pred, confidence, fig_dir / "misclassified.png")
    conv = [layer for layer in net.layers if isinstance(layer, cnn.Convolutional)]
    if conv:
        figures.kernels(conv[0].params["kernels"], fig_dir / "kernels.png")
        first = [int(np.flatnonzero(test.labels == c)[0]) for c in classes if np.any(test.labels == c)]
        figures.feature_maps(net, test.images[first], test.labels[first], fig_dir / "feature_maps.png")
    atomic.write_json(metrics_path, metrics)
    return metrics
