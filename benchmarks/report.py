"""The benchmarks' result dicts as Markdown tables (what `python -m benchmarks` prints, with or without
--full-mnist, --batch-hook, --sweep-wall or --split-ab): each table a pandas DataFrame of the measured values,
written out by `markdown`."""

import statistics
from typing import Any

import pandas as pd

X = "{:.2f}x"


def markdown(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A Markdown table of `frame`: cells through formats[column] (a str.format pattern), "-" where missing;
    formatted and numeric columns right-aligned."""
    formats = formats or {}
    cells = {
        col: ["-" if pd.isna(v) else formats[col].format(v) if col in formats else str(v) for v in frame[col]]
        for col in frame.columns
    }
    right = [col in formats or pd.api.types.is_numeric_dtype(frame[col]) for col in frame.columns]
    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells.values(), strict=True)]
    return "\n".join(lines)


def section(title: str, table: str, *notes: str) -> str:
    return "\n".join([f"### {title}", table, *notes])


def header(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"CPU: {m['cpu']}, {m['vector_units']} ({m['usable_cpus']} usable of {m['cpu_count']}); kernel "
        f"{m.get('kernel', 'not recorded')}; load avg "
        f"{m['loadavg_1min']:.2f} at start, {m.get('loadavg_1min_end', float('nan')):.2f} at end",
        f"python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, torch {m['torch']}; numerics {m['numerics']}; "
        f"threads {m['threads']} (numpy BLAS and torch); {'; '.join(m['thread_limits_applied']) or 'no limits set'}",
    ]
    for lib in m["blas"]:
        lines.append(
            f"  {lib['user_api']}: {lib['internal_api']} {lib['version']} arch={lib['architecture']} "
            f"threads={lib['num_threads']} {lib['filepath']}"
        )
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none"
    lines.append(f"BLAS and numerics variables set by the shell: {env}")
    g, f, lim = result["gemm_gflops"], result["flops"], result["compute_limit_samples_per_s"]
    lines.append(
        f"large GEMM ({result['gemm_size']}^3): {g['float32']:.0f} GFLOP/s f32, {g['float64']:.0f} f64 -> compute "
        f"limit {lim['float32']:,.0f} samples/s f32, {lim['float64']:,.0f} f64 at {f['per_sample']:,} FLOPs/sample "
        f"(forward + backward; + {f['update_per_step']:,} per SGD step)"
    )
    return "\n".join(lines)


def throughput(result: dict) -> str:
    v = pd.DataFrame(result["variants"])
    frame = pd.DataFrame(
        {
            "variant": v["name"],
            "samples/s": v["samples_per_s"],
            "min - max": [f"{min(r):,.0f} - {max(r):,.0f}" for r in v["samples_per_s_all"]],
            "spread": v["spread"],
            "x notebook": v["vs_notebook"],
            "x PyTorch": v["vs_torch"],
            "of GEMM limit": v["gemm_fraction"],
            "peak RSS MiB": v.get("peak_rss_mib"),
            "other load": v["other_cores_median"],
        }
    )
    formats = {"samples/s": "{:,.0f}", "min - max": "{}", "spread": "{:.0%}", "x notebook": X, "x PyTorch": X}
    formats |= {"of GEMM limit": "{:.1%}", "peak RSS MiB": "{:,.0f}", "other load": "{:.2f}"}
    notes = [
        "(spread: (fastest - slowest round) / median; x notebook, x PyTorch: median over rounds of the ratio within "
        "a round; other load: CPU cores used by other processes while timing, median)"
    ]
    busy = v["other_cores_median"].dropna()
    if len(busy) and busy.max() > 0.25:
        notes.append(
            f"WARNING: other processes used up to {busy.max():.2f} cores while timing; with "
            f"{result['machine']['threads']} BLAS threads on a busy machine products can stall 10x or more. "
            "Rerun when idle (or with --threads 1)."
        )
    title = f"Training throughput: median samples/s over {result['options']['rounds']} interleaved rounds"
    return section(title, markdown(frame, formats), *notes)


def by_batch(result: dict) -> str:
    v = pd.DataFrame(result["variants"])
    v["implementation"] = v["impl"] + v["network"].map(lambda n: "" if n == "notebook" else f" {n}") + " " + v["dtype"]
    table = v.pivot_table(index="implementation", columns="batch_size", values="samples_per_s", sort=False)
    table = table.rename(columns=lambda b: f"batch {b}").reset_index()
    return section("samples/s by batch size", markdown(table, {c: "{:,.0f}" for c in table.columns[1:]}))


def budget(result: dict) -> str:
    frame = pd.DataFrame(result["batch1_budget"]).rename(
        columns={
            "notebook_step_us": "notebook step us",
            "step_us": "cnn step us",
            "weight_passes_us": "three passes us",
            "rest_us": "rest us",
            "goal_x_notebook": "goal",
            "goal_step_us": "step the goal needs us",
            "rest_budget_us": "rest it leaves us",
            "x_notebook_if_rest_were_free": "x notebook if the rest were free",
        }
    )
    formats = {c: "{:,.0f}" for c in frame.columns if c.endswith(" us")} | {"goal": "{:g}x"}
    title = "Batch 1 against its goals: the step, the three passes over the 3380 x 100 weights alone, the rest"
    return section(title, markdown(frame, formats | {"x notebook if the rest were free": "{:.1f}x"}))


def modes(result: dict) -> str:
    m = result["numerics_modes"]
    lines = [
        f"{mode} child: {i['mode']}{f' ({r})' if (r := i['reason']) else ''}; BLAS {', '.join(i['blas'])}"
        for mode, i in m["modes"].items()
    ]
    frame = pd.DataFrame(m["variants"])[["name", "canonical_samples_per_s", "native_samples_per_s"]]
    frame["native / canonical"] = [v["native_over_canonical"] for v in m["variants"]]
    frame.columns = ["variant", "canonical samples/s", "native samples/s", "native / canonical"]
    formats = {"canonical samples/s": "{:,.0f}", "native samples/s": "{:,.0f}", "native / canonical": "{:.2f}"}
    title = "Canonical vs native numerics (cnn; two child processes, rounds alternating)"
    return "\n".join([f"### {title}", *lines, markdown(frame, formats)])


def memory(result: dict) -> str:
    frame = pd.DataFrame.from_dict(result["memory"], orient="index").rename_axis("scenario").reset_index()
    columns = ["scenario", "images", "peak_rss_mib", "seconds"] + (["error"] if "error" in frame else [])
    frame = frame.reindex(columns=columns).rename(columns={"peak_rss_mib": "peak RSS MiB"})
    formats = {"images": "{:,.0f}", "peak RSS MiB": "{:,.0f}", "seconds": "{:.1f}"}
    return section("Peak memory of one training epoch (a child process each)", markdown(frame, formats))


def full_data(result: dict) -> str:
    r = result["full_data_recipe"]
    impls = [impl for impl in ("cnn", "torch") if impl in r]
    frame = pd.DataFrame([r[impl] for impl in impls]).drop(columns="all")
    frame.insert(0, "implementation", impls)
    frame.columns = [
        "implementation",
        "seconds per epoch",
        "samples/s",
        f"{r['epochs']} epochs (s)",
        "minor faults/step",
    ]
    formats = {"seconds per epoch": "{:.2f}", "samples/s": "{:,.0f}", f"{r['epochs']} epochs (s)": "{:.1f}"}
    title = (
        f"Full-data recipe: {r['images']:,} images (the sample tiled), {r['network']} network, batch {r['batch_size']}"
        f", Adam, {r['dtype']}; best of 2 epochs each, alternating"
    )
    ratio = r.get("torch_over_cnn_time")
    notes = [] if ratio is None else [f"PyTorch time / cnn time: {ratio:.2f}x"]
    return section(title, markdown(frame, formats | {"minor faults/step": "{:.1f}"}), *notes)


def scaling(result: dict) -> str:
    frame = pd.DataFrame(result["scaling"])
    frame.columns = ["network", "batch", "dtype", "images", "seconds", "us/image"]
    formats = {"images": "{:,}", "seconds": "{:.3f}", "us/image": "{:.0f}"}
    title = "Cost vs number of images (cnn, one pass, best of 3; ten-digit: best of 2)"
    return section(title, markdown(frame, formats))


def architectures(result: dict) -> str:
    frame = pd.DataFrame(result["architectures"]).reindex(
        columns=["network", "parameters", "cnn_samples_per_s", "torch_samples_per_s", "vs_torch"]
    )
    frame.columns = ["network", "parameters", "cnn samples/s", "PyTorch samples/s", "x PyTorch"]
    formats = {"parameters": "{:,}", "cnn samples/s": "{:,.0f}", "PyTorch samples/s": "{:,.0f}", "x PyTorch": X}
    title = "Depth and width (batch 64 float32, Adam, one pass over 2,048 images, best of 2)"
    return section(title, markdown(frame, formats))


def recipes(result: dict) -> str:
    frame = pd.DataFrame(result["recipes"]).reindex(
        columns=["recipe", "epochs", "batch_size", "dtype", "learning_rate", "accuracy", "train_seconds", "goal"]
    )
    frame["accuracy"] = [", ".join(f"{a:.1%}" for a in accs) for accs in frame["accuracy"]]
    frame["train_seconds"] = [", ".join(f"{s:.1f}" for s in secs) for secs in frame["train_seconds"]]
    frame["met"] = ["error: " + r["error"] if "error" in r else "yes" if r["met"] else "NO" for r in result["recipes"]]
    frame.columns = ["recipe", "epochs", "batch", "dtype", "lr", "accuracy by seed", "train s by seed", "goal", "met"]
    first = result["recipes"][0]
    title = (
        f"Recipes trained by the pipeline's commands: test accuracy (seeds {', '.join(map(str, first['seeds']))}; "
        f"met: the first seed), numerics {', '.join(sorted({n for r in result['recipes'] for n in r['numerics']}))}"
    )
    return section(title, markdown(frame, {"lr": "{:g}", "goal": "{:.0%}"}))


def targets(result: dict) -> str:
    frame = pd.DataFrame(result["targets"])
    percent = frame["target"].str.contains("accuracy|fraction|spread")
    frame["value"] = [
        "-" if pd.isna(v) else f"{v:.1%}" if p else f"{v:,.2f}" for v, p in zip(frame["value"], percent, strict=True)
    ]
    frame["met"] = frame["met"].map({True: "yes", False: "NO"}).fillna("not measured")
    frame.columns = ["target", "measured", "goal", "met"]
    return section("Targets", markdown(frame, {"measured": "{}"}))


def profile(p: dict) -> str:
    b, total = p["batch_size"], p["total_us"]
    frame = pd.DataFrame(p["rows"], columns=["call", "us/step"]).sort_values("us/step", ascending=False)
    frame["share"] = frame["us/step"] / total
    title = (
        f"cnn step profile ({p['step']}), {p['network']} network, batch {b} {p['dtype']}: {total:,.0f} us/step "
        f"({b / total * 1e6:,.0f} samples/s, one thread), {p['minor_faults_per_step']:.1f} minor page faults/step"
    )
    return section(title, markdown(frame, {"us/step": "{:,.1f}", "share": "{:.0%}"}))


def format_report(result: dict) -> str:
    parts = [header(result), throughput(result), by_batch(result)]
    optional = [
        ("batch1_budget", budget),
        ("numerics_modes", modes),
        ("memory", memory),
        ("full_data_recipe", full_data),
        ("scaling", scaling),
        ("architectures", architectures),
        ("recipes", recipes),
    ]
    parts += [table(result) for key, table in optional if result.get(key)]
    parts.append(targets(result))
    parts += [profile(p) for p in result.get("profile", [])]
    return "\n\n".join(parts)


def other_load(runs: list[dict[str, Any]]) -> str:
    """The median over runs of the cores other processes used while a run trained, as text."""
    loads = [r["other_cores"] for r in runs if r.get("other_cores") is not None]
    return f"{statistics.median(loads):.2f}" if loads else "-"


def _accuracy_cell(stats: dict[str, Any]) -> str | None:
    if stats["accuracy"] is None:
        return None
    low, high = stats["accuracy_min"], stats["accuracy_max"]
    return f"{stats['accuracy']:.2%} ({low:.2%}-{high:.2%})" if len(stats["seeds"]) > 1 else f"{stats['accuracy']:.2%}"


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:,.1f} s"


def _to_target(stats: dict[str, Any]) -> str | None:
    """The median time to the target, with how many seeds reached it when not all did."""
    reached, runs = stats["reached_target"].split("/")
    if runs == "0":
        return None
    if reached == "0":
        return "not reached"
    return _seconds(stats["seconds_to_target"]) + ("" if reached == runs else f" ({reached}/{runs} seeds)")


def _peak_memory(row: dict[str, Any]) -> str | None:
    cells = [row[impl]["peak_rss_mib"] for impl in ("cnn", "torch")]
    return None if cells == [None, None] else " / ".join("-" if c is None else f"{c:,.0f}" for c in cells) + " MiB"


def _other_cores(row: dict[str, Any]) -> str | None:
    cells = [row[impl].get("other_cores") for impl in ("cnn", "torch")]
    return None if cells == [None, None] else " / ".join("-" if c is None else f"{c:.2f}" for c in cells)


def full_mnist(result: dict[str, Any]) -> str:
    """The full-MNIST benchmark's per-preset table (benchmarks.full_mnist) with a header naming the machine,
    threads and load."""
    rows = result["presets"]
    frame = pd.DataFrame(
        {
            "preset": [r["preset"] + (" (interrupted)" if r.get("interrupted") else "") for r in rows],
            "epochs": [r["cnn"]["epochs"] or r["torch"]["epochs"] for r in rows],
            "cnn test accuracy (median, range)": [_accuracy_cell(r["cnn"]) for r in rows],
            "goal": [r["goal"] for r in rows],
            "cnn training": [_seconds(r["cnn"]["train_seconds"]) for r in rows],
            "PyTorch test accuracy": [_accuracy_cell(r["torch"]) for r in rows],
            "PyTorch training": [_seconds(r["torch"]["train_seconds"]) for r in rows],
            "speed vs PyTorch": [r["speed_vs_torch"] for r in rows],
            "cnn to 99.0%": [_to_target(r["cnn"]) for r in rows],
            "PyTorch to 99.0%": [_to_target(r["torch"]) for r in rows],
            "peak RSS cnn / PyTorch": [_peak_memory(r) for r in rows],
            "other cores busy cnn / PyTorch": [_other_cores(r) for r in rows],
        }
    )
    formats = {"epochs": "{:.0f}", "goal": "{:.1%}", "speed vs PyTorch": "{:.2f}x"}
    m = result["machine"]
    last = result.get("last_started", result["started"])  # combined results: the span of their measurements
    span = result["started"] if last == result["started"] else f"{result['started']} to {last}"
    lines = [
        f"Full MNIST ({result['mnist_dir']}), {span}: {m['cpu']} ({m['vector_units']}), kernel "
        f"{m['kernel']}, numerics {m['numerics']}, numpy {m['numpy']}, torch {m['torch']}; {result['threads']} "
        f"threads (cnn and torch); load average {result['loadavg_start'][0]:.2f} at start, "
        f"{result['loadavg_end'][0]:.2f} at end; other processes used {other_load(result['runs'])} cores during "
        "training (median over runs)",
        markdown(frame, formats),
        f"(accuracy: median and range over seeds {', '.join(map(str, sorted({r['seed'] for r in result['runs']})))}"
        "; times: medians over the seeds both implementations trained, side by side (over every seed where none "
        "was), training time without the per-epoch test evaluation; speed: PyTorch's time / cnn's; to 99.0%: "
        "training time to the end of the first epoch at >= 99.0% test accuracy, median over the seeds that got "
        "there; peak RSS: largest over seeds, each run its own process; other cores busy: the cores other "
        "processes used while the timed runs trained, median)",
    ]
    if result.get("interrupted"):
        lines.append("interrupted: a row marked so counts the epochs its runs had finished; later runs did not start")
    for row in rows:
        lines += [f"error: {row['preset']} {e}" for e in row.get("errors", [])]
    return "\n".join(lines)


def rounds(rows: list[dict[str, Any]], unit: str, value: str, ratio: str) -> str:
    """A table of timing.summary's rows: median, range and spread over the rounds, and the paired ratio."""
    frame = pd.DataFrame(rows)
    frame["range"] = [f"{value.format(min(v))} - {value.format(max(v))}" for v in frame["all"]]
    frame = frame[["name", "median", "range", "spread", "ratio"]]
    frame.columns = ["", f"median {unit}", f"min - max {unit}", "spread", ratio]
    formats = {f"median {unit}": value, f"min - max {unit}": "{}", "spread": "{:.1%}", ratio: "{:.3f}"}
    return markdown(frame, formats)


def batch_hook(result: dict[str, Any]) -> str:
    """The per-batch hook's cost (benchmarks.timing.batch_hook)."""
    title = (
        f"train's per-batch hook: default network, batch 1, {result['epochs']} epochs of {result['images']} images, "
        f"{result['rounds']} alternating rounds"
    )
    notes = [
        "(spread: (fastest - slowest) / median; x no hook: median over rounds of the two rates of the same round)",
        f"the hook alone: {result['us_per_call']:.2f} us a call, {result['share_of_step']:.2%} of a step at the "
        "median rate without it",
    ]
    return section(title, rounds(result["rows"], "steps/s", "{:,.0f}", "x no hook"), *notes)


def sweep_wall(result: dict[str, Any]) -> str:
    """The wall time of one sweep three ways (benchmarks.commands.sweep_wall)."""
    title = f"Wall time of a {result['points']}-point sweep, {result['rounds']} alternating rounds"
    note = "(x the queue's speed: the median over rounds of the queue's time over this one's in the same round)"
    return section(title, rounds(result["rows"], "s", "{:.1f}", "x the queue's speed"), note)


def split_ab(results: list[dict[str, Any]]) -> str:
    """cnn's split step against the unsplit one, a row per preset and measure (benchmarks.timing.split_ab)."""
    first = results[0]
    frame = pd.DataFrame(
        [
            {
                "preset": r["preset"],
                "batch": r["batch_size"],
                "dtype": r["dtype"],
                "measure": row["measure"],
                "unsplit s/step": row["unsplit"],
                "split s/step": row["split"],
                "unsplit / split": row["ratio"],
                "rounds' ratios": f"{row['ratio_min']:.2f} - {row['ratio_max']:.2f}",
                "split, whole update s/step": row["whole_update"],
                "whole update / in parts": row["update_ratio"],
                "split, numpy layers s/step": row["numpy_layers"],
                "numpy layers / kernels": row["kernels_ratio"],
                "other load": r["other_cores"],
            }
            for r in results
            for row in r["rows"]
        ]
    )
    formats = {
        "unsplit s/step": "{:.3f}",
        "split s/step": "{:.3f}",
        "unsplit / split": X,
        "rounds' ratios": "{}",
        "split, whole update s/step": "{:.3f}",
        "whole update / in parts": X,
        "split, numpy layers s/step": "{:.3f}",
        "numpy layers / kernels": X,
    }
    title = (
        f"cnn's split step (two halves, cnn.parallel) against the unsplit step: {first['rounds']} alternating rounds "
        f"of {first['steps']} step{'s' if first['steps'] > 1 else ''} each, cnn threads {first['threads']}, kernel "
        f"{first['kernel']}, numerics {first['numerics']}"
    )
    notes = [
        f"(images: {first['images']}; medians over the rounds; unsplit / split: the median over rounds of the ratio "
        "within a round; other load: CPU cores other processes used while timing)",
        "(wall clock: what a user waits; CPU critical path: the calling thread's CPU time with each lockstep phase of "
        "the split counted as its slower half's, what two idle cores would take, handoffs aside, so an upper bound "
        "of the gain, disturbed far less by other load than the wall clock; CPU of all threads: the work the split "
        "adds. With cnn threads 1 the halves run one after the other: what the split itself costs)",
        "(split, whole update: the split step with the halves' gradients summed and the optimizer's update applied in "
        "the calling thread, where the split step does both in two parts of each large parameter, one per thread; with "
        "cnn threads 1 the two are the same step)",
        "(split, numpy layers: the split step with cnn.kernels switched off, MaxPool, ReLU backward and BatchNorm in "
        "their numpy formulation; numpy layers / kernels: what the compiled kernels gain)",
    ]
    return section(title, markdown(frame, formats | {"other load": "{:.2f}"}), *notes)
