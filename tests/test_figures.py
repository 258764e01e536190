"""pipeline.figures: valid PNGs of the promised size, byte-identical re-renders, and the right content."""

import re

import numpy as np
import pytest
from PIL import Image

import cnn
from pipeline import figures


def small_net() -> cnn.Sequential:
    specs = [
        {"type": "conv", "depth": 3, "kernel_size": 3, "bias": "untied"},
        {"type": "sigmoid"},
        {"type": "conv", "depth": 2, "kernel_size": 3, "bias": "tied"},
        {"type": "flatten"},
        {"type": "dense"},
        {"type": "sigmoid"},
    ]
    return cnn.Sequential(cnn.build(specs, n_classes=2), init="normal", seed=1)


def _history(path):
    figures.loss_curve([{"epoch": e, "loss": 1 / e, "val_loss": 1.5 / e} for e in range(1, 8)], path)


def _confusion(path):
    figures.confusion_matrix(np.array([3, 3, 5, 5, 8]), np.array([3, 5, 5, 5, 3]), [3, 5, 8], path)


def _roc(path):
    figures.roc_curve(np.array([0, 0, 1, 1, 0, 1]), np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), path)


def _misclassified(path):
    rng = np.random.default_rng(0)
    figures.misclassified_grid(rng.random((6, 28, 28)), np.arange(6), np.array([0, 2, 2, 0, 4, 1]), rng.random(6), path)


def _none_misclassified(path):
    figures.misclassified_grid(np.zeros((3, 28, 28)), np.arange(3), np.arange(3), np.ones(3), path)


def _kernels(path):
    figures.kernels(np.random.default_rng(0).standard_normal((5, 2, 3, 3)), path)


def _feature_maps(path):
    images = np.random.default_rng(0).random((2, 1, 28, 28))
    figures.feature_maps(small_net(), images, np.array([0, 1]), path)


RENDERERS = {
    "loss_curve": _history,
    "confusion_matrix": _confusion,
    "roc_curve": _roc,
    "misclassified_grid": _misclassified,
    "no_misclassified": _none_misclassified,
    "kernels": _kernels,
    "feature_maps": _feature_maps,
}


EXPECTED_SIZES = figures.SIZES | {
    "feature_maps": figures.feature_maps_size(2, 1 + 3 + 2),  # input + conv maps
    "misclassified_grid": figures.misclassified_size(3),  # _misclassified makes 3 mistakes
}


@pytest.mark.parametrize("kind", RENDERERS)
def test_png_of_fixed_size_and_identical_bytes_when_rendered_again(tmp_path, kind):
    first, second = tmp_path / "a" / f"{kind}.png", tmp_path / "b" / f"{kind}.png"
    RENDERERS[kind](first)
    RENDERERS[kind](second)
    with Image.open(first) as image:
        assert image.format == "PNG"
        assert image.size == EXPECTED_SIZES[kind]
        image.verify()
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no temporary file left behind
    with Image.open(first) as image:
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 128).mean() > 0.002  # something is drawn


def test_misclassified_grid_holds_exactly_the_mistakes(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    images = rng.random((30, 28, 28))
    true = np.arange(30) % 10
    pred = true.copy()
    mistakes = [2, 7, 8, 19, 23]
    pred[mistakes] = (true[mistakes] + 3) % 10
    confidence = rng.uniform(0.5, 1.0, 30)
    drawn_figures = []
    save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: (drawn_figures.append(fig), save(fig, path)))

    shown = figures.misclassified_grid(images, true, pred, confidence, tmp_path / "grid.png")

    assert sorted(shown.tolist()) == mistakes
    assert confidence[shown].tolist() == sorted(confidence[mistakes], reverse=True)  # most confident first
    (fig,) = drawn_figures
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(mistakes)
    for ax, i in zip(panels, shown, strict=True):
        assert np.array_equal(ax.images[0].get_array(), images[i])
        assert ax.get_title() == f"true {true[i]} / pred {pred[i]} ({confidence[i]:.2f})"
    assert re.fullmatch(r"true \d / pred \d \(0\.\d\d\)", panels[0].get_title())
    with Image.open(tmp_path / "grid.png") as image:
        assert image.size == figures.misclassified_size(len(mistakes))


def test_misclassified_panels_keep_their_size_and_the_figure_grows_with_their_count(tmp_path):
    sizes = {}
    for mistakes in (1, 3, 8, 9, 17):
        true = np.zeros(20, dtype=int)
        pred = (np.arange(20) < mistakes).astype(int)
        figures.misclassified_grid(np.zeros((20, 28, 28)), true, pred, np.ones(20), tmp_path / f"{mistakes}.png")
        with Image.open(tmp_path / f"{mistakes}.png") as image:
            sizes[mistakes] = image.size
        assert sizes[mistakes] == figures.misclassified_size(mistakes)
    panel_width, panel_height = figures.MISTAKE_PANEL
    assert sizes[1][0] < 400 and sizes[1][1] < 250  # one mistake: a small picture, not one giant panel
    assert sizes[8][0] - sizes[3][0] == 5 * panel_width  # a row holds up to 8 panels
    assert sizes[9] == (sizes[8][0], sizes[8][1] + panel_height)  # the 9th starts a second row
    assert sizes[17] == (sizes[8][0], sizes[8][1] + 2 * panel_height)


def test_misclassified_grid_caps_the_panels_and_says_when_there_are_none(tmp_path):
    true = np.zeros(100, dtype=int)
    pred = np.ones(100, dtype=int)
    confidence = np.linspace(0.5, 1, 100)
    shown = figures.misclassified_grid(np.zeros((100, 28, 28)), true, pred, confidence, tmp_path / "a.png", 9)
    assert shown.tolist() == list(range(99, 90, -1))
    none = figures.misclassified_grid(np.zeros((4, 28, 28)), true[:4], true[:4], confidence[:4], tmp_path / "b.png")
    assert none.size == 0
    with Image.open(tmp_path / "b.png") as image:
        assert image.size == figures.SIZES["no_misclassified"]


def test_roc_points_on_a_known_case():
    fpr, tpr, thresholds = figures.roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thresholds.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    assert figures.auc(fpr, tpr) == 0.75


def test_roc_ties_make_one_point_and_auc_counts_them_half():
    fpr, tpr, thresholds = figures.roc_points(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.9, 0.1]))
    assert thresholds.tolist() == [np.inf, 0.9, 0.5, 0.1]
    assert (fpr.tolist(), tpr.tolist()) == ([0, 0, 0.5, 1], [0, 0.5, 1, 1])
    assert figures.auc(fpr, tpr) == 0.875  # pairs: 3 won, 1 tied (counts 1/2) of 4


def test_auc_is_the_probability_a_positive_outscores_a_negative(tmp_path):
    rng = np.random.default_rng(5)
    true = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) * 0.7 + true * 0.3, 2)  # rounding makes ties
    pos, neg = score[true == 1], score[true == 0]
    expected = np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :])
    assert figures.roc_curve(true, score, tmp_path / "roc.png") == pytest.approx(expected, abs=1e-12)


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        figures.roc_points(np.ones(5), np.linspace(0, 1, 5))


def test_confusion_counts_rows_true_columns_predicted():
    counts = figures.confusion_counts(np.array([3, 3, 5, 5, 8]), np.array([3, 5, 5, 5, 3]), [3, 5, 8])
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match=r"\[9\]"):
        figures.confusion_counts(np.array([3, 9]), np.array([3, 3]), [3, 5])


def test_conv_activations_are_the_outputs_of_each_convolution():
    net = small_net()
    images = np.random.default_rng(2).random((2, 1, 28, 28))
    captured = figures.conv_activations(net, images)
    assert [name for name, _ in captured] == ["conv 1 + Sigmoid", "conv 2"]
    first = net.layers[1].forward(net.layers[0].forward(images))
    assert np.array_equal(captured[0][1], first)
    assert np.array_equal(captured[1][1], net.layers[2].forward(first))
    assert captured[1][1].shape == (2, 2, 24, 24)
    raw = figures.conv_activations(net, images, after_activation=False)
    assert np.array_equal(raw[0][1], net.layers[0].forward(images))
