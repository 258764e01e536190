"""`dvc plots show` output rendered in headless Chromium, offline: the charts must be drawn, not a blank page.

The helpers take any folder holding a DVC repo with plots: a tiny one whose stage writes PNGs with
pipeline.figures (DVC shows image plots as <img>, which needs no network), and a copy of this project after
`dvc repro`, whose vega charts (CDN) stay blank offline while the PNG of every chart is drawn.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnn
from pipeline import figures
from tests.dvc_project import Project

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: every host name fails to resolve, CDNs included
]

# Appended to a copy of the page: after "load", list every plot <div> with its images' decoded sizes and
# whether a vega chart (svg/canvas) was drawn into it, as JSON in <pre id="probe-result">.
PROBE = """<script>
window.addEventListener("load", () => {
  const plots = [...document.body.children].filter(e => e.tagName === "DIV" && e.id).map(div => ({
    id: div.id,
    images: [...div.querySelectorAll("img")].map(img => ({
      src: img.getAttribute("src"), width: img.naturalWidth, height: img.naturalHeight})),
    vega: div.textContent.includes("vegaEmbed"),
    drawn: div.querySelector("svg, canvas") !== null,
  }));
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify(plots);
  document.body.appendChild(out);
});
</script>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.fail(f"headless Chromium is not installed; {INSTALL_HINT}")


def dvc_env(tmp: Path) -> dict[str, str]:
    """Environment for dvc commands isolated from the user's and the machine's DVC config and caches."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(ROOT))
    for name in ("DVC_SITE_CACHE_DIR", "DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR"):
        env[name] = str(tmp / name.lower())
    return env


def dvc(repo: Path, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_chromium(args: list[str], profile: Path) -> str:
    done = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}"
    return done.stdout


def probe_page(page: Path, tmp: Path) -> list[dict]:
    """Open `page` in headless Chromium and report each plot <div>: its images' sizes and whether drawn."""
    probed = page.with_name(f"probe-{page.name}")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = run_chromium(["--virtual-time-budget=3000", "--dump-dom", probed.as_uri()], tmp / "profile-dom")
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"the probe did not run in {probed}; page source starts:\n{dom[:500]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, png: Path, tmp: Path, size: tuple[int, int] = (1280, 2400)) -> np.ndarray:
    """Screenshot of `page` saved as `png`; returns it as a (H, W) grayscale array in [0, 255]."""
    png.parent.mkdir(parents=True, exist_ok=True)
    run_chromium([f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.as_uri()], tmp / "profile-shot")
    with Image.open(png) as image:
        return np.asarray(image.convert("L"))


def render_dvc_plots(
    repo: Path, tmp: Path, artifact: Path, env: dict[str, str], size: tuple[int, int] = (1280, 2400)
) -> list[dict]:
    """`dvc plots show` in `repo`, then the page in headless Chromium: a screenshot of `size` (width, height)
    pixels kept as `artifact`, and the probe's list of plots (see probe_page)."""
    out = tmp / "dvc_plots"
    dvc(repo, "plots", "show", "--out", str(out), env=env)
    page = out / "index.html"
    assert page.is_file(), f"dvc plots show wrote no {page}"
    plots = probe_page(page, tmp)
    pixels = screenshot(page, artifact, tmp, size)
    assert (pixels < 128).mean() > 0.01, f"the screenshot {artifact} is (nearly) blank"
    return plots


STAGE_SCRIPT = """
import numpy as np
from pipeline import figures

rng = np.random.default_rng(0)
true = np.repeat([0, 1], 20)
score = np.clip(true * 0.4 + rng.random(40) * 0.6, 0, 1)
pred = (score > 0.5).astype(int)
figures.loss_curve([{"epoch": e, "loss": 1 / e, "val_loss": 1.2 / e} for e in range(1, 6)], "figures/loss.png")
figures.confusion_matrix(true, pred, [0, 1], "figures/confusion_matrix.png")
figures.roc_curve(true, score, "figures/roc.png")
confidence = np.maximum(score, 1 - score)
shown = figures.misclassified_grid(rng.random((40, 28, 28)), true, pred, confidence, "figures/mis.png")
open("mistakes_shown.txt", "w").write(str(len(shown)))
figures.kernels(rng.standard_normal((5, 1, 3, 3)), "figures/kernels.png")
"""

DVC_YAML = """
stages:
  figures:
    cmd: {python} make_figures.py
    deps:
      - make_figures.py
    outs:
      - figures
plots:
  - figures
  - loss.csv:
      x: epoch
      y: loss
"""


def test_image_plots_render_offline_in_chromium(tmp_path):
    chromium()
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dvc_env(tmp_path)
    (repo / "make_figures.py").write_text(STAGE_SCRIPT)
    (repo / "dvc.yaml").write_text(textwrap.dedent(DVC_YAML).format(python=sys.executable))
    (repo / "loss.csv").write_text("epoch,loss\n1,0.5\n2,0.3\n")
    dvc(repo, "init", "--no-scm", "-q", env=env)
    dvc(repo, "repro", "-q", env=env)

    plots = render_dvc_plots(repo, tmp_path, ARTIFACTS / "plots_tiny_repo.png", env)

    expected = {
        "loss.png": figures.SIZES["loss_curve"],
        "confusion_matrix.png": figures.SIZES["confusion_matrix"],
        "roc.png": figures.SIZES["roc_curve"],
        "mis.png": figures.misclassified_size(int((repo / "mistakes_shown.txt").read_text())),
        "kernels.png": figures.SIZES["kernels"],
    }
    images = {Path(img["src"]).name.removeprefix("workspace_figures_"): img for p in plots for img in p["images"]}
    assert set(images) == set(expected), plots
    for name, (width, height) in expected.items():
        assert (images[name]["width"], images[name]["height"]) == (width, height), f"{name} not decoded: {plots}"
    # The CSV plot is a vega chart loaded from a CDN: offline its <div> stays empty, and the probe sees that.
    vega = [p for p in plots if p["vega"]]
    assert [p["id"] for p in vega] == ["loss_csv"]
    assert not vega[0]["drawn"]


def test_missing_chromium_fails_with_the_install_command(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        chromium()


def test_this_projects_plots_render_offline_in_chromium(tmp_path):
    chromium()
    project = Project.create(tmp_path / "project")
    project.set_param("train.epochs", "3")
    project.dvc("repro", "-q")

    shot = ARTIFACTS / "plots_project.png"
    plots = render_dvc_plots(project.path, tmp_path, shot, project.env, size=(1280, 4400))  # the whole page

    reports = project.path / "reports"
    predictions = np.genfromtxt(reports / "evaluate" / "predictions.csv", delimiter=",", names=True, dtype=int)
    mistakes = int((predictions["actual"] != predictions["predicted"]).sum())
    net = cnn.load(project.path / "models" / "model.npz")
    depth = next(layer for layer in net.layers if isinstance(layer, cnn.Convolutional)).params["kernels"].shape[0]
    expected = {
        "train/loss.png": figures.SIZES["loss_curve"],
        "evaluate/figures/confusion_matrix.png": figures.SIZES["confusion_matrix"],
        "evaluate/figures/roc.png": figures.SIZES["roc_curve"],
        "evaluate/figures/misclassified.png": (
            figures.misclassified_size(min(mistakes, 64)) if mistakes else figures.SIZES["no_misclassified"]
        ),
        "evaluate/figures/kernels.png": figures.SIZES["kernels"],
        "evaluate/figures/feature_maps.png": figures.feature_maps_size(len(net.meta["classes"]), 1 + min(8, depth)),
    }
    for name, size in expected.items():
        with Image.open(reports / name) as image:
            assert image.size == size, f"reports/{name} is {image.size}, expected {size}"
    drawn = [img for p in plots for img in p["images"]]
    images = {name: img for name in expected for img in drawn if img["src"].endswith(name.replace("/", "_"))}
    assert len(drawn) == len(expected), plots
    assert set(images) == set(expected), plots
    for name, (width, height) in expected.items():
        assert (images[name]["width"], images[name]["height"]) == (width, height), f"{name} not drawn: {plots}"
    # The vega charts (the three of plots: in dvc.yaml, and the stages' CSV plots) load vega from a CDN and
    # stay blank offline; the PNG of each of the three, checked above, is what shows there.
    vega = [p for p in plots if p["vega"]]
    assert {"Loss_per_epoch", "Confusion_matrix", "ROC"} <= {p["id"] for p in vega}, plots
    assert not any(p["drawn"] for p in vega), vega
