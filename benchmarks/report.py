"""The benchmark's result dict as Markdown tables (what `python -m benchmarks` prints)."""

from benchmarks import profile


def _num(value, fmt="{:,.0f}", missing="-") -> str:
    return missing if value is None else fmt.format(value)


def header(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"CPU: {m['cpu']} ({m['usable_cpus']} usable of {m['cpu_count']}); load avg {m['loadavg_1min']:.2f} at start, "
        f"{m.get('loadavg_1min_end', float('nan')):.2f} at end",
        f"python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, torch {m['torch']}; threads {m['threads']} "
        f"(numpy BLAS and torch); {'; '.join(m['thread_limits_applied']) or 'no thread limits set'}",
    ]
    for lib in m["blas"]:
        lines.append(
            f"  {lib['user_api']}: {lib['internal_api']} {lib['version']} arch={lib['architecture']} "
            f"threads={lib['num_threads']} {lib['filepath']}"
        )
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none"
    lines.append(f"BLAS/OpenMP environment variables: {env}")
    g, f = result["gemm_gflops"], result["flops"]
    lim = result["compute_limit_samples_per_s"]
    lines.append(
        f"large GEMM ({result['gemm_size']}^3): {g['float32']:.0f} GFLOP/s f32, {g['float64']:.0f} f64 -> "
        f"compute limit {lim['float32']:,.0f} samples/s f32, {lim['float64']:,.0f} f64 "
        f"at {f['per_sample']:,} FLOPs/sample "
        f"(forward + backward; + {f['update_per_step']:,} per SGD step)"
    )
    return "\n".join(lines)


def throughput_table(result: dict) -> str:
    o = result["options"]
    lines = [
        f"### Training throughput: median samples/s over {o['rounds']} interleaved rounds",
        "| variant | samples/s | min - max | spread | x notebook | x PyTorch | of GEMM limit | peak RSS MiB "
        "| other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["variants"]:
        rates = r["samples_per_s_all"]
        lines.append(
            f"| {r['name']} | {r['samples_per_s']:,.0f} | {min(rates):,.0f} - {max(rates):,.0f} | "
            f"{_num(r.get('spread'), '{:.0%}')} | {_num(r['vs_notebook'], '{:.2f}x')} | "
            f"{_num(r['vs_torch'], '{:.2f}x')} | {_num(r['gemm_fraction'], '{:.1%}')} | "
            f"{_num(r.get('peak_rss_mib'))} | {_num(r['other_cores_median'], '{:.2f}')} |"
        )
    lines.append("(spread: (fastest - slowest round) / median)")
    lines.append("(x notebook, x PyTorch: median over rounds of the ratio within a round)")
    lines.append("(other load: CPU cores used by other processes during the measurements, median)")
    busy = [r["other_cores_median"] for r in result["variants"] if r["other_cores_median"] is not None]
    if busy and max(busy) > 0.25:
        lines.append(
            f"WARNING: other processes used up to {max(busy):.2f} cores while timing; with "
            f"{result['machine']['threads']} BLAS threads on a busy machine products can stall 10x or more. "
            "Rerun when idle (or with --threads 1)."
        )
    return "\n".join(lines)


def batch_table(result: dict) -> str:
    """samples/s by batch size: how the cost per sample falls with the batch."""
    batches = sorted({r["batch_size"] for r in result["variants"]})
    lines = [
        "### samples/s by batch size",
        "| implementation | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    rows: dict[str, dict[int, float]] = {}
    for r in result["variants"]:
        network = r["network"]
        label = r["impl"] if network == "notebook" else f"{r['impl']} {network}"
        rows.setdefault(f"{label} {r['dtype']}", {})[r["batch_size"]] = r["samples_per_s"]
    for name, by_batch in rows.items():
        lines.append(f"| {name} | " + " | ".join(_num(by_batch.get(b)) for b in batches) + " |")
    return "\n".join(lines)


def scaling_table(result: dict) -> str:
    lines = [
        "### Cost vs number of images (cnn, one pass, best of 3; ten-digit: best of 2)",
        "| network | batch | dtype | images | seconds | us/image |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for s in result["scaling"]:
        lines.append(
            f"| {s.get('network', 'notebook')} | {s['batch_size']} | {s['dtype']} | {s['images']:,} | "
            f"{s['seconds']:.3f} | {s['us_per_image']:.0f} |"
        )
    recipe = result.get("full_data_recipe")
    if recipe:
        c = recipe["cnn"]
        lines.append(
            f"| ten-digit (full-data recipe) | 16 | float32 | {recipe['images']:,} | {c['seconds_per_epoch']:.3f} | "
            f"{c['seconds_per_epoch'] / recipe['images'] * 1e6:.0f} |"
        )
    return "\n".join(lines)


def architecture_table(result: dict) -> str:
    lines = [
        "### Depth and width (batch 64 float32, Adam, one pass over 2,048 images, best of 2)",
        "| network | parameters | cnn samples/s | PyTorch samples/s | x PyTorch |",
        "|---|---:|---:|---:|---:|",
    ]
    for a in result["architectures"]:
        lines.append(
            f"| {a['network']} | {a['parameters']:,} | {a['cnn_samples_per_s']:,.0f} | "
            f"{_num(a.get('torch_samples_per_s'))} | {_num(a['vs_torch'], '{:.2f}x')} |"
        )
    return "\n".join(lines)


def recipe_table(result: dict) -> str:
    r = result["full_data_recipe"]
    lines = [
        f"### Full-data recipe: {r['images']:,} images (the sample tiled), {r['network']} network, batch "
        f"{r['batch_size']}, Adam, {r['dtype']}; best of 2 epochs each, alternating",
        f"| implementation | seconds per epoch | samples/s | {r['epochs']} epochs (s) | minor page faults/step |",
        "|---|---:|---:|---:|---:|",
    ]
    for impl in ("cnn", "torch"):
        if impl in r:
            x = r[impl]
            lines.append(
                f"| {impl} | {x['seconds_per_epoch']:.2f} | {x['samples_per_s']:,.0f} | {x['recipe_seconds']:.1f} | "
                f"{x['minor_faults_per_step']:.1f} |"
            )
    if r.get("torch_over_cnn_time") is not None:
        lines.append(f"PyTorch time / cnn time: {r['torch_over_cnn_time']:.2f}x")
    return "\n".join(lines)


def modes_table(result: dict) -> str:
    m = result["numerics_modes"]
    lines = ["### Canonical vs native numerics (cnn; two child processes, rounds alternating)"]
    for mode, info in m["modes"].items():
        lines.append(f"{mode}: mode {info['mode']} {info['reason']}; BLAS {', '.join(info['blas'])}")
    lines += ["| variant | canonical samples/s | native samples/s | native / canonical |", "|---|---:|---:|---:|"]
    for v in m["variants"]:
        lines.append(
            f"| {v['name']} | {v['canonical_samples_per_s']:,.0f} | {v['native_samples_per_s']:,.0f} | "
            f"{v['native_over_canonical']:.2f} |"
        )
    return "\n".join(lines)


def memory_table(result: dict) -> str:
    lines = [
        "### Peak memory of one training epoch (a child process each)",
        "| scenario | images | peak RSS MiB | seconds |",
    ]
    lines.append("|---|---:|---:|---:|")
    for name, m in result["memory_target"].items():
        if "error" in m:
            lines.append(f"| {name} | - | {m['error']} | - |")
        else:
            lines.append(f"| {name} | {m['images']:,} | {m['peak_rss_mib']:.0f} | {m['seconds']:.1f} |")
    return "\n".join(lines)


def accuracy_table(result: dict) -> str:
    lines = [
        "### Accuracy on the default sample (200 test images)",
        "| batch | dtype | lr | epochs | accuracy by seed | >= 99% (first seed) |",
    ]
    lines.append("|---:|---|---:|---:|---|---|")
    for a in result["accuracy"]:
        accs = ", ".join(f"{v:.1%}" for v in a["accuracy"])
        lines.append(
            f"| {a['batch_size']} | {a['dtype']} | {a['learning_rate']:g} | {a['epochs']} | {accs} | "
            f"{'yes' if a['met'] else 'NO'} |"
        )
    t = result.get("ten_digit_accuracy")
    if t:
        lines.append(
            f"README ten-digit configuration ({t['train_images']:,} training images, {t['epochs']} epochs, batch "
            f"{t['batch_size']}, Adam {t['learning_rate']:g}, {t['dtype']}): {t['accuracy']:.1%} on "
            f"{t['test_images']:,} test images ({'meets' if t['met'] else 'BELOW'} 95%), {t['train_seconds']:.1f} s"
        )
    return "\n".join(lines)


def budget_table(result: dict) -> str:
    lines = [
        "### Batch 1 against its goals: the step, the three passes over the 3380 x 100 weights alone, the rest",
        "| dtype | notebook step us | cnn step us | three passes us | rest us | goal | step the goal needs us "
        "| rest it leaves us | x notebook if the rest were free |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in result["batch1_budget"]:
        lines.append(
            f"| {b['dtype']} | {b['notebook_step_us']:.0f} | {b['step_us']:.0f} | {b['weight_passes_us']:.0f} | "
            f"{b['rest_us']:.0f} | {b['goal_x_notebook']:g}x | {b['goal_step_us']:.0f} | {b['rest_budget_us']:.0f} | "
            f"{b['x_notebook_if_rest_were_free']:.1f}x |"
        )
    return "\n".join(lines)


def targets_table(result: dict) -> str:
    lines = ["### Targets (issues 5 and 13)", "| target | measured | goal | met |", "|---|---:|---:|---|"]
    for t in result["targets"]:
        value = t["value"]
        shown = (
            "-"
            if value is None
            else f"{value:.1%}"
            if "accuracy" in t["target"] or "fraction" in t["target"] or "spread" in t["target"]
            else f"{value:,.2f}"
        )
        met = "not measured" if t["met"] is None else "yes" if t["met"] else "NO"
        lines.append(f"| {t['target']} | {shown} | {t['goal']} | {met} |")
    return "\n".join(lines)


def format_report(result: dict) -> str:
    parts = [header(result), throughput_table(result), batch_table(result)]
    if result.get("batch1_budget"):
        parts.append(budget_table(result))
    if "numerics_modes" in result:
        parts.append(modes_table(result))
    if result["memory_target"]:
        parts.append(memory_table(result))
    if "full_data_recipe" in result:
        parts.append(recipe_table(result))
    if "scaling" in result:
        parts.append(scaling_table(result))
    if "architectures" in result:
        parts.append(architecture_table(result))
    if "accuracy" in result:
        parts.append(accuracy_table(result))
    parts.append(targets_table(result))
    parts += [profile.format_profile(p) for p in result.get("profile", [])]
    return "\n\n".join(parts)
