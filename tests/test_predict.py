"""predict: MNIST-style preparation of the user's pictures, and predictions that match the original arrays."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

import cnn
from pipeline import idx
from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.predict import Failure, Prediction, predict_images, prepare_image

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def test_split() -> tuple[np.ndarray, np.ndarray]:
    images = idx.read_idx(SAMPLE / "t10k-images-idx3-ubyte.gz")
    labels = idx.read_idx(SAMPLE / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small ten-digit CNN trained for a few seconds on the shipped sample's train split."""
    images = idx.read_idx(SAMPLE / "train-images-idx3-ubyte.gz")[:, None].astype(np.float32) / 255
    labels = idx.read_idx(SAMPLE / "train-labels-idx1-ubyte.gz").astype(np.int64)
    specs = [
        {"type": "conv", "depth": 4, "kernel_size": 3, "bias": "tied"},
        {"type": "relu"},
        {"type": "maxpool", "size": 2},
        {"type": "flatten"},
        {"type": "dense"},
        {"type": "softmax"},
    ]
    net = cnn.Sequential(cnn.build(specs, n_classes=10), init="he", seed=0, dtype="float32")
    net.meta["classes"] = list(range(10))
    loss = cnn.LOSSES["categorical_cross_entropy"]()
    net.fit(images, cnn.one_hot(labels, 10), loss, cnn.Adam(0.01), epochs=3, batch_size=32, seed=0)
    path = tmp_path_factory.mktemp("model") / "model.npz"
    cnn.save(net, path)
    return path


def as_user_picture(digit: np.ndarray, path: Path, scale: float, offset: tuple[int, int], canvas=(300, 240)) -> None:
    """A 28x28 uint8 MNIST digit -> dark-on-light PNG, enlarged `scale` times, pasted off-centre."""
    size = round(28 * scale)
    picture = Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)
    page = Image.new("L", canvas, 255)
    page.paste(picture, offset)
    page.save(path)


def test_pictures_predict_like_the_original_arrays(tmp_path, model, test_split):
    images, labels = test_split
    chosen = np.arange(0, len(images), len(images) // 40)[:40]
    assert len(set(labels[chosen].tolist())) == 10
    paths = []
    for n, i in enumerate(chosen):
        path = tmp_path / f"digit_{i}.png"
        as_user_picture(images[i], path, scale=2 + (n % 5) * 0.5, offset=(10 + 37 * (n % 4), 5 + 23 * (n % 3)))
        paths.append(path)

    results = predict_images(paths, model)

    assert [r.path for r in results] == paths
    assert all(isinstance(r, Prediction) for r in results)
    net = cnn.load(model)
    on_arrays = net.predict(images[chosen][:, None].astype(np.float32) / 255).argmax(axis=1)
    on_pictures = np.array([r.digit for r in results])
    assert np.mean(on_pictures == on_arrays) >= 0.95, (on_pictures, on_arrays)
    # each result against the network's own outputs on the prepared picture (a softmax: the probabilities)
    outputs = net.predict(np.stack([prepare_image(path) for path in paths])[:, None].astype(np.float32))
    for r, out in zip(results, outputs, strict=True):
        assert r.digit == int(out.argmax())
        assert list(r.probabilities) == list(range(10))
        np.testing.assert_allclose([r.probabilities[d] for d in range(10)], out, rtol=1e-6, atol=1e-9)


def test_prepared_picture_is_mnist_like(tmp_path, test_split):
    images, _ = test_split
    digit = images[7]
    as_user_picture(digit, tmp_path / "dark_on_light.png", scale=3.5, offset=(150, 10))
    Image.fromarray(digit).resize((200, 200)).save(tmp_path / "light_on_dark.jpg", quality=95)

    dark_on_light = prepare_image(tmp_path / "dark_on_light.png")
    light_on_dark = prepare_image(tmp_path / "light_on_dark.jpg")

    for prepared in (dark_on_light, light_on_dark):
        assert prepared.shape == (28, 28)
        assert prepared.max() == pytest.approx(1)  # the ink at full brightness
        assert np.mean(prepared < 0.05) > 0.6  # on a dark background (MNIST's light-on-dark), whatever the input
        rows, cols = np.nonzero(prepared > 0.05)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (20, 21)  # fit into 20x20 (+1 for resampling spill)
        assert np.allclose(ndimage.center_of_mass(prepared), (14, 14), atol=0.6)
        assert np.corrcoef(prepared.ravel(), digit.ravel())[0, 1] > 0.85
    assert np.abs(dark_on_light - light_on_dark).mean() < 0.05


def test_transparent_and_colour_pictures(tmp_path, test_split):
    digit = test_split[0][3]
    ink = np.zeros((84, 84, 4), dtype=np.uint8)  # black ink on a transparent page
    ink[..., 3] = np.asarray(Image.fromarray(digit).resize((84, 84)))
    Image.fromarray(ink, "RGBA").save(tmp_path / "transparent.png")
    rgb = np.stack([255 - np.asarray(Image.fromarray(digit).resize((84, 84)))] * 3, axis=-1)
    rgb[..., 2] = 255  # blue-ish paper
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    reference = prepare_image(tmp_path / "colour.png")
    assert np.corrcoef(reference.ravel(), digit.ravel())[0, 1] > 0.85
    assert np.abs(prepare_image(tmp_path / "transparent.png") - reference).mean() < 0.05


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.png", None, "no such file"),
        ("notes.png", lambda p: p.write_text("not a picture\n"), "not a readable image"),
        ("truncated.png", "truncated", "not a readable image"),
        ("white.png", lambda p: Image.new("L", (120, 90), 255).save(p), "no digit found"),
        ("grey.jpg", lambda p: Image.new("RGB", (64, 64), (90, 90, 90)).save(p), "no digit found"),
    ],
)
def test_bad_pictures_raise_one_line_naming_the_file(tmp_path, name, make, message):
    path = tmp_path / name
    if make == "truncated":
        Image.new("L", (200, 200), 0).save(tmp_path / "whole.png")
        path.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    elif make is not None:
        make(path)
    with pytest.raises(UserError) as caught:
        prepare_image(path)
    text = str(caught.value)
    assert str(path) in text and message in text and "\n" not in text


def test_command_predicts_the_good_pictures_and_reports_the_bad(tmp_path, model, test_split):
    images, labels = test_split
    good = []
    for i in (0, 150, 420):
        good.append(tmp_path / f"digit_{labels[i]}.png")
        as_user_picture(images[i], good[-1], scale=3, offset=(40, 30))
    missing = tmp_path / "missing.png"
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello\n")
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 255).save(blank)
    args = [str(good[0]), str(missing), str(good[1]), str(not_image), str(blank), str(good[2])]
    result = CliRunner().invoke(app, ["predict", *args, "--model", str(model)])

    assert result.exit_code == 2, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(p) for p in good]
    for line in lines:
        digit, probs = line.split(": ", 1)[1].split("  ", 1)
        assert int(digit) in range(10)
        assert probs.startswith("(0: ") and probs.endswith(")") and probs.count(":") == 10
    errors = result.stderr.splitlines()
    assert len(errors) == 3
    for error, path in zip(errors, (missing, not_image, blank), strict=True):
        assert error.startswith("error: ") and str(path) in error


def test_command_with_a_missing_model_fails_in_one_line(tmp_path):
    picture = tmp_path / "digit.png"
    as_user_picture(np.eye(28, dtype=np.uint8) * 255, picture, scale=2, offset=(0, 0))
    result = CliRunner().invoke(app, ["predict", str(picture), "--model", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "nope.npz" in result.stderr and "--model" in result.stderr


def test_sigmoid_outputs_are_normalised_to_probabilities(tmp_path, test_split):
    images, _ = test_split
    specs = [{"type": "flatten"}, {"type": "dense"}, {"type": "sigmoid"}]
    net = cnn.Sequential(cnn.build(specs, n_classes=2), init="normal", seed=3)
    net.meta["classes"] = [3, 7]
    cnn.save(net, tmp_path / "sigmoid.npz")
    as_user_picture(images[0], tmp_path / "digit.png", scale=2, offset=(5, 5))

    (result,) = predict_images([tmp_path / "digit.png"], tmp_path / "sigmoid.npz")

    raw = net.predict(prepare_image(tmp_path / "digit.png")[None, None])[0]
    assert isinstance(result, Prediction)
    assert list(result.probabilities) == [3, 7]
    assert list(result.probabilities.values()) == pytest.approx(raw / raw.sum())
    assert result.digit == [3, 7][int(raw.argmax())]


def test_one_bad_picture_does_not_stop_the_others(tmp_path, model, test_split):
    as_user_picture(test_split[0][5], tmp_path / "good.png", scale=2, offset=(0, 0))
    results = predict_images([tmp_path / "gone.png", tmp_path / "good.png"], model)
    assert isinstance(results[0], Failure) and "gone.png" in results[0].error
    assert isinstance(results[1], Prediction)
