"""Resource sanity: preprocess and evaluate handle a full-size MNIST (70,000 images) within 1 GiB."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import cnn
from pipeline import idx

ROOT = Path(__file__).resolve().parents[1]
GIB_IN_KIB = 1024 * 1024
# Runs one CLI command in this process and reports its peak resident memory (KiB) on the last line.
MEASURE = (
    "import resource, runpy, sys\n"
    "sys.argv = ['pipeline', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('pipeline', run_name='__main__')\n"
    "finally:\n"
    "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def peak_kib(workdir: Path, *args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *args], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert "error" not in result.stderr, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_full_size_mnist_preprocess_and_evaluate_stay_under_1_gib(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 8:20, 8:20] = rng.integers(0, 256, (count, 12, 12), dtype=np.uint8)
        idx.write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        idx.write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(count) % 10).astype(np.uint8))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(digits=list(range(10)), limit_per_class=100_000)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    assert peak_kib(tmp_path, "preprocess") < GIB_IN_KIB
    with np.load(tmp_path / "data" / "processed" / "train.npz") as train:
        assert train["images"].shape == (60_000, 1, 28, 28)

    net = cnn.Sequential(cnn.build([*cnn.NOTEBOOK_LAYERS[:-1], {"type": "softmax"}], n_classes=10), seed=0)
    net.meta = {"classes": list(range(10)), "loss": "categorical_cross_entropy"}
    (tmp_path / "models").mkdir()
    cnn.save(net, tmp_path / "models" / "model.npz")
    assert peak_kib(tmp_path, "evaluate") < GIB_IN_KIB
    assert (tmp_path / "metrics.json").exists()
