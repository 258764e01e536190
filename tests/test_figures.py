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
    figures.confusion_matrix(np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]]), [3, 5, 8], path)


def _roc(path):
    figures.roc_curve(np.array([0, 0, 0.5, 0.5, 1]), np.array([0, 0.5, 0.5, 1, 1]), 0.75, path)


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


# (width, height) in pixels, as promised to the README and to `dvc plots show`; written out, not read from figures.
EXPECTED_SIZES = {
    "loss_curve": (640, 400),
    "confusion_matrix": (560, 480),
    "roc_curve": (480, 480),
    "no_misclassified": (320, 80),
    "kernels": (720, 480),
    "feature_maps": (600, 280),  # 2 rows of 90 px + 100; 6 panels (input + 3 + 2 maps) of 90 px + 60
    "misclassified_grid": (410, 200),  # 3 mistakes: one row of 3 panels of 130 x 150, + 20 and + 50 of margins
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
        assert image.size == (5 * 130 + 20, 150 + 50)


def test_misclassified_panels_keep_their_size_and_the_figure_grows_with_their_count(tmp_path):
    sizes = {}
    for mistakes in (1, 3, 8, 9, 17):
        true = np.zeros(20, dtype=int)
        pred = (np.arange(20) < mistakes).astype(int)
        figures.misclassified_grid(np.zeros((20, 28, 28)), true, pred, np.ones(20), tmp_path / f"{mistakes}.png")
        with Image.open(tmp_path / f"{mistakes}.png") as image:
            sizes[mistakes] = image.size
    panel_width, panel_height = 130, 150
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
        assert image.size == EXPECTED_SIZES["no_misclassified"]


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
