"""Tell a training run that went nowhere from one that is merely slow, in one line that says what to change.

Saturation: the loss ends far above what a constant guess gives (every output at 1/K, the class share of
a balanced set) and did not fall over the run; typically the learning rate is so large that the sigmoids
are pinned at 0 or 1. A slow run (small learning rate) also starts high but its loss keeps falling.
"""

import numpy as np

import cnn

FAR_ABOVE = 2.0  # final loss > FAR_ABOVE x the constant guess's loss ...
STUCK = 0.95  # ... and > STUCK x the first epoch's loss: saturated


def chance_loss(loss_name: str, n_classes: int) -> float:
    """The loss of a constant guess of 1/K on every output, for a balanced set of K classes (ln 2 for
    binary cross-entropy with 2 classes, ln K for categorical cross-entropy)."""
    targets = np.eye(n_classes)
    return cnn.LOSSES[loss_name]().value(targets, np.full((n_classes, n_classes), 1 / n_classes))


def saturation(history: list[dict], loss_name: str, n_classes: int, learning_rate: float) -> str | None:
    """A one-line warning if training saturated, else None. Needs two epochs or more to judge."""
    if len(history) < 2:
        return None
    first, final = history[0]["loss"], history[-1]["loss"]
    chance = chance_loss(loss_name, n_classes)
    if final > FAR_ABOVE * chance and final > STUCK * first:
        return (
            f"warning: training saturated: the loss ended at {final:.4g}, {final / chance:.0f}x that of a constant "
            f"guess ({chance:.3g}), and did not fall; lower train.learning_rate (now {learning_rate:g}) in params.yaml"
        )
    return None
