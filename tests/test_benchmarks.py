"""Smoke test of `python -m benchmarks --quick`: every variant timed, ratios consistent. No timing assertions."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXPECTED = {"notebook b1 f64"} | {f"cnn b{b} {d}" for b in (1, 32, 128) for d in ("f64", "f32")}


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "result.json"
    # One BLAS thread: on a shared 2-core machine two threads can stall for seconds; speed is not tested here.
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--no-torch", "--threads", "1", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Training throughput" in done.stdout
    return json.loads(out.read_text())


def test_every_variant_is_timed(quick_result):
    variants = {v["name"]: v for v in quick_result["variants"]}
    assert set(variants) == EXPECTED
    for v in variants.values():
        assert len(v["samples_per_s_all"]) == quick_result["options"]["rounds"] == 2
        assert all(rate > 0 for rate in v["samples_per_s_all"])
        assert v["samples_per_s"] == pytest.approx(statistics.median(v["samples_per_s_all"]), rel=1e-12)
        assert v["peak_rss_mib"] > 0


def test_ratios_are_medians_over_the_references_median(quick_result):
    variants = {v["name"]: v for v in quick_result["variants"]}
    notebook = variants["notebook b1 f64"]["samples_per_s"]
    limit = quick_result["gemm_gflops"]
    for v in variants.values():
        assert v["vs_notebook"] == pytest.approx(v["samples_per_s"] / notebook, rel=1e-12)
        assert v["vs_torch"] is None  # --no-torch
        per_sample = quick_result["flops"]["per_sample"]
        assert v["gemm_fraction"] == pytest.approx(v["samples_per_s"] * per_sample / (limit[v["dtype"]] * 1e9))
    assert quick_result["machine"]["torch"] == "skipped (--no-torch)"


def test_flops_and_targets(quick_result):
    flops = quick_result["flops"]
    # Dense(3380 -> 100): forward, weight gradient and input gradient, 2 FLOPs per multiply-add each.
    assert flops["by_layer"]["dense1 forward"] == 2 * 3380 * 100
    assert flops["per_sample"] == sum(flops["by_layer"].values())
    assert 0.9 < 3 * 2 * 3380 * 100 / flops["per_sample"] < 0.96  # the dense layer is ~93% of the work
    targets = {t["target"]: t for t in quick_result["targets"]}
    variants = {v["name"]: v for v in quick_result["variants"]}
    assert targets["batch 1 f32 vs notebook"]["value"] == variants["cnn b1 f32"]["vs_notebook"]
    assert targets["batch 1 f32 vs notebook"]["met"] == (variants["cnn b1 f32"]["vs_notebook"] >= 8)
    assert targets["batch 32 f32 vs PyTorch"]["met"] is None  # not measured without torch
    memory = quick_result["memory_target"]["cnn b32 float32"]
    assert memory["images"] == 12_665 and memory["peak_rss_mib"] > memory["before_training_mib"] > 0
