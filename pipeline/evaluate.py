"""evaluate stage: models/model.npz + data/processed/test.npz -> metrics.json and reports/evaluate/.

metrics.json holds the few numbers runs are compared by (accuracy, loss, ROC AUC, test images), so that
`dvc metrics show` and `dvc exp show` stay readable for ten digits; the per-class figures go to
reports/evaluate/per_class.csv.
"""

from pathlib import Path

import numpy as np
import pandas as pd

import cnn
from pipeline import atomic, dataset, figures, metrics, predict, tables


def run(model_path: Path, data_path: Path, metrics_path: Path, report_dir: Path) -> dict:
    """Score the model on the test split; write metrics.json, the CSVs of reports/evaluate/ and the figures."""
    net = predict.load_model(model_path)  # cnn.load plus the checks a pipeline model needs (meta.classes)
    classes = [int(c) for c in net.meta["classes"]]
    test = dataset.load(data_path, classes=classes)
    outputs = net.predict(test.images)
    loss = cnn.LOSSES[net.meta.get("loss", "binary_cross_entropy")]()
    target = cnn.one_hot(test.class_index, len(classes))
    pred = np.asarray(classes)[outputs.argmax(axis=1)]
    probs = predict.probabilities(net, outputs)
    positive, score = metrics.one_vs_rest(target, probs)
    roc = metrics.roc_points(positive, score)
    roc_auc = metrics.auc(roc["fpr"], roc["tpr"])
    counts = metrics.confusion_counts(test.labels, pred, classes)
    summary = {
        "accuracy": tables.fixed(np.mean(pred == test.labels)),
        "loss": round(float(loss.value(target.astype(outputs.dtype), outputs)), 6),
        "roc_auc": round(roc_auc, 6),
        "test_images": len(test.labels),
    }

    tables.write_csv(pd.DataFrame({"actual": test.labels, "predicted": pred}), report_dir / "predictions.csv")
    tables.write_csv(metrics.per_class(counts, classes), report_dir / "per_class.csv")
    tables.write_csv(roc, report_dir / "roc.csv")
    tables.write_csv(metrics.precision_recall_points(positive, score), report_dir / "precision_recall.csv")
    fig_dir = report_dir / "figures"
    figures.roc_curve(roc["fpr"], roc["tpr"], roc_auc, fig_dir / "roc.png")
    figures.confusion_matrix(counts, classes, fig_dir / "confusion_matrix.png")
    figures.misclassified_grid(test.images[:, 0], test.labels, pred, probs.max(axis=1), fig_dir / "misclassified.png")
    conv = [layer for layer in net.layers if isinstance(layer, cnn.Convolutional)]
    if conv:
        figures.kernels(conv[0].params["kernels"], fig_dir / "kernels.png")
        first = [int(np.flatnonzero(test.labels == c)[0]) for c in classes if np.any(test.labels == c)]
        figures.feature_maps(net, test.images[first], test.labels[first], fig_dir / "feature_maps.png")
    atomic.write_json(metrics_path, summary)
    return summary
