"""`dvc plots show` of this project rendered in headless Chromium with no network: every chart must be drawn.

The vega charts draw from the libraries inside plots/offline.html (.dvc/config: plots.html_template), the
PNGs as plain images. Without Chromium these tests skip and say why; CI (.ci/run) sets
MNIST_CNN_REQUIRE_BROWSER=1, which turns the skip into a failure.
"""

import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.dvc_project import Project

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
REQUIRE = "MNIST_CNN_REQUIRE_BROWSER"
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

# Appended to a copy of the page: once every vega chart has drawn (or after 5 s), list every plot <div>: its
# images' decoded sizes, and for a vega chart the size of its canvas/SVG and how many of its pixels are painted.
PROBE = """<script>
function painted(canvas) {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0 && (data[i-3] < 250 || data[i-2] < 250)) count++;
  return count;
}
function report() {
  const plots = [...document.body.children].filter(e => e.tagName === "DIV" && e.id).map(div => {
    const canvas = div.querySelector("canvas"), svg = div.querySelector("svg");
    return {
      id: div.id,
      images: [...div.querySelectorAll("img")].map(img => ({
        src: img.getAttribute("src"), width: img.naturalWidth, height: img.naturalHeight})),
      vega: div.querySelector("canvas, svg") !== null || div.textContent.includes("vegaEmbed"),
      width: canvas ? canvas.width : svg ? svg.getBoundingClientRect().width : 0,
      height: canvas ? canvas.height : svg ? svg.getBoundingClientRect().height : 0,
      painted: canvas ? painted(canvas) : svg ? svg.querySelectorAll("path, rect, text").length : 0,
    };
  });
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({vegaEmbed: typeof vegaEmbed, plots: plots});
  document.body.appendChild(out);
}
window.addEventListener("load", () => {
  const start = Date.now();
  const wait = () => {
    const divs = [...document.body.children].filter(e => e.tagName === "DIV" && e.textContent.includes("vegaEmbed"));
    if (divs.every(d => d.querySelector("canvas, svg")) || Date.now() - start > 5000) setTimeout(report, 300);
    else setTimeout(wait, 100);
  };
  wait();
});
</script>
"""


def chromium() -> str:
    """The browser's path; skips the test (fails it under MNIST_CNN_REQUIRE_BROWSER=1) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    message = f"headless Chromium is not installed; {INSTALL_HINT}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{message} ({REQUIRE}=1: this run must not skip the browser tests)")
    pytest.skip(message)


def run_chromium(args: list[str], profile: Path) -> str:
    done = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}"
    return done.stdout


def probe_page(page: Path, tmp: Path) -> dict:
    """Open `page` in headless Chromium; {"vegaEmbed": its type, "plots": one entry per plot <div>}."""
    probed = page.with_name(f"probe-{page.name}")
    head, tail = page.read_text().rsplit("</body>", 1)  # the last one: the libraries' code holds the string too
    probed.write_text(head + PROBE + "</body>" + tail)
    dom = run_chromium(["--virtual-time-budget=15000", "--dump-dom", probed.as_uri()], tmp / "profile-dom")
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"the probe did not run in {probed}; page source starts:\n{dom[:500]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, png: Path, tmp: Path, size: tuple[int, int]) -> np.ndarray:
    """Screenshot of `page` saved as `png`; returns it as a (H, W) grayscale array in [0, 255]."""
    png.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(
        ["--virtual-time-budget=15000", f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.as_uri()],
        tmp / "profile-shot",
    )
    with Image.open(png) as image:
        return np.asarray(image.convert("L"))


def misclassified_png_size(mistakes: int) -> tuple[int, int]:
    """The README's promise for misclassified.png: panels of 130 x 150 px in rows of up to 8 (64 at most),
    20 px of side margins and 50 for the title; 320 x 80 when there is no mistake."""
    if mistakes == 0:
        return 320, 80
    shown = min(mistakes, 64)
    columns = min(shown, 8)
    return max(360, columns * 130 + 20), math.ceil(shown / columns) * 150 + 50


pytestmark = pytest.mark.slow  # runs real dvc
CHARTS = {"Loss_per_epoch", "Confusion_matrix", "ROC", "Precision-recall", "F1_per_digit"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    chromium()
    project = Project.create(tmp_path_factory.mktemp("plots") / "project")
    project.set_param("train.epochs", "3")
    project.set_param("train.validation_fraction", "0.1")
    project.dvc("repro", "-q")
    return project


def test_plain_dvc_plots_show_draws_every_chart_offline(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "dvc_plots"
    project.dvc("plots", "show", "--out", str(out))  # no --html-template: .dvc/config names it
    page = out / "index.html"
    source = page.read_text()
    assert not re.search(r"<script[^>]+src=", source), "the page loads a script from elsewhere"
    assert "vega-embed 6." in source  # the vendored libraries are in the page itself

    probed = probe_page(page, tmp_path)
    assert probed["vegaEmbed"] == "function", probed
    plots = {p["id"]: p for p in probed["plots"]}
    vega = {name for name, p in plots.items() if p["vega"]}
    assert vega == CHARTS, f"one chart per idea, no default-template duplicates: {sorted(plots)}"
    for name in CHARTS:
        chart = plots[name]
        assert chart["width"] > 100 and chart["height"] > 100, f"{name} has no drawing area: {chart}"
        assert chart["painted"] > 500, f"{name} is blank: {chart}"

    reports = project.path / "reports" / "evaluate"
    predictions = pd.read_csv(reports / "predictions.csv")
    mistakes = int((predictions["actual"] != predictions["predicted"]).sum())
    expected = {  # (width, height) in pixels; the notebook's network has 5 kernels, digits 0 and 1
        "misclassified.png": misclassified_png_size(mistakes),
        "kernels.png": (720, 480),
        "feature_maps.png": (600, 280),  # 1 input + 5 maps of 90 px + 60; 2 rows of 90 px + 100
    }
    images = {Path(img["src"]).name.split("figures_")[-1]: img for p in plots.values() for img in p["images"]}
    assert set(images) == set(expected), plots
    for name, (width, height) in expected.items():
        assert (images[name]["width"], images[name]["height"]) == (width, height), f"{name} not drawn: {images}"

    pixels = screenshot(page, ARTIFACTS / "plots_project.png", tmp_path, (1280, 2400))
    assert (pixels < 128).mean() > 0.01, "the screenshot is (nearly) blank"


def test_charts_have_the_axes_of_their_idea(project: Project) -> None:
    specs = json.loads(project.dvc("plots", "show", "--json").stdout)["data"]
    encoding = {name: plots[0]["content"] for name, plots in specs.items() if plots and plots[0]["type"] == "vega"}
    confusion = encoding["Confusion matrix"]["spec"]["encoding"]
    assert (confusion["x"]["field"], confusion["y"]["field"]) == ("predicted", "actual")  # like the PNG
    loss = encoding["Loss per epoch"]
    fields = {row["field"] for row in loss["data"]["values"]}
    assert fields == {"loss", "val_loss"}  # training and validation loss, one line each
    assert len([r for r in loss["data"]["values"] if r["field"] == "val_loss" and r["val_loss"]]) == 3
    for name, (x, y) in {"ROC": ("fpr", "tpr"), "Precision-recall": ("recall", "precision")}.items():
        curve = next(layer for layer in encoding[name]["layer"] if layer["mark"]["type"] == "line")["encoding"]
        assert (curve["x"]["field"], curve["y"]["field"]) == (x, y)


def test_browser_tests_skip_with_a_reason_and_fail_when_ci_requires_them(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    (empty / "git").symlink_to(shutil.which("git"))
    base = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{empty}")
    base.pop(REQUIRE, None)
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", __file__, "-k", "plain"]
    skipped = subprocess.run(command, cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)
    assert skipped.returncode == 0, skipped.stdout[-2000:]
    assert "1 skipped" in skipped.stdout and "headless Chromium is not installed" in skipped.stdout
    required = subprocess.run(command, cwd=ROOT, env=base | {REQUIRE: "1"}, capture_output=True, text=True, timeout=120)
    assert required.returncode == 1, required.stdout[-2000:]
    assert "must not skip the browser tests" in required.stdout


def render_svg(specs: dict[str, dict], tmp: Path) -> dict[str, str]:
    """{chart: its SVG}, each vega-lite spec drawn by the page's own libraries with the SVG renderer."""
    divs = []
    for number, spec in enumerate(specs.values()):
        divs.append(f'<div id="chart{number}"></div><script>vegaEmbed("#chart{number}", {json.dumps(spec)}, ')
        divs.append('{renderer: "svg", actions: false});</script>')
    page = tmp / "svg.html"
    template = (ROOT / "plots" / "offline.html").read_text()
    page.write_text(template.replace("{plot_divs}", "\n".join(divs)))
    dom = run_chromium(["--virtual-time-budget=15000", "--dump-dom", page.as_uri()], tmp / "profile-svg")
    found = {}
    for number, name in enumerate(specs):
        match = re.search(rf'<div id="chart{number}"[^>]*>(.*?)</div>', dom, re.S)
        assert match and "<svg" in match.group(1), f"{name} was not drawn"
        found[name] = html.unescape(match.group(1))
    return found


def test_curves_show_their_reference_lines_off_the_frame_and_the_matrix_its_counts(
    project: Project, tmp_path: Path
) -> None:
    charts = json.loads(project.dvc("plots", "show", "--json").stdout)["data"]
    specs = {name: charts[name][0]["content"] for name in ("ROC", "Precision-recall", "Confusion matrix")}
    assert "showValues" not in json.dumps(specs["Confusion matrix"])  # no checkbox to find the counts behind
    svg = render_svg(specs, tmp_path)
    size = specs["ROC"]["width"]

    def rules(chart: str) -> list[str]:
        return re.findall(
            r'<line aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="rule mark"', svg[chart]
        )

    def line_points(chart: str) -> np.ndarray:
        path = re.search(r'aria-roledescription="line mark" d="M([^"]+)"', svg[chart]).group(1)
        return np.array([[float(v) for v in p.split(",")] for p in re.split(r"L|M", path)])

    roc_rule = rules("ROC")
    assert len(roc_rule) == 1 and "0" in roc_rule[0], svg["ROC"][:2000]  # the diagonal of a guess
    assert re.search(r'transform="translate\((\d+(\.\d+)?),(\d+(\.\d+)?)\)" x2="(\d+(\.\d+)?)" y2="-', svg["ROC"])
    predictions = pd.read_csv(project.path / "reports" / "evaluate" / "predictions.csv")
    share = (predictions["actual"] == predictions["actual"].max()).mean()  # positives: the second digit
    assert rules("Precision-recall") == [f"precision: {share:g}"], svg["Precision-recall"][:2000]
    for chart in ("ROC", "Precision-recall"):
        points = line_points(chart)  # in pixels of the size x size plot area; the frame is at 0 and size
        assert points.min() >= 8 and points.max() <= size - 8, f"{chart}: the curve touches the frame"
    counts = pd.crosstab(predictions["actual"], predictions["predicted"]).to_numpy().ravel()
    texts = re.findall(r'aria-roledescription="text mark"[^>]*>([^<]*)<', svg["Confusion matrix"])
    assert sorted(map(int, texts)) == sorted(counts.tolist()), texts
