"""Where a training step's time goes: cnn's plain step (cnn.step.plain_step, one thread) timed call by call,
with the minor page faults per step (fresh memory the allocator had to map)."""

import resource
import time
from collections import defaultdict

import numpy as np

from benchmarks import data, networks, runners


def profile_step(network: str, batch_size: int, dtype: str, steps: int, warmup: int = 3) -> dict:
    """Mean microseconds per step of each call: batch indexing, every layer's forward and backward, the loss
    value, the loss gradient where backward starts and the optimizer's step.
    -> {"network", "batch_size", "dtype", "steps", "rows": [(call, us)], "total_us", "minor_faults_per_step"}."""
    from cnn import step as cnn_step
    from cnn import threads

    spec = networks.NETWORKS[network]
    net, loss, optimizer = spec.build(dtype, runners.SEED)
    loss_gradient = cnn_step.LossGradient.for_network(net, loss)
    x0, labels = data.training_images(spec.digits)
    n = (steps + warmup) * batch_size
    x, y = data.tile(x0.astype(dtype), n), data.tile(data.one_hot(labels, spec.n_classes, dtype), n)
    order = np.random.default_rng(0).permutation(n)
    names = [f"{i} {type(layer).__name__}" for i, layer in enumerate(net.layers)]
    totals: dict[str, float] = defaultdict(float)

    def timed(key: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        totals[key] += time.perf_counter() - start
        return out

    with threads.blas_threads():
        for step in range(steps + warmup):
            if step == warmup:
                totals.clear()
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = timed("index batch", lambda i: (x[i], y[i]), idx)
            out = xb
            for name, layer in zip(names, net.layers, strict=True):
                out = timed(f"{name} forward", layer.forward, out)
            timed("loss value", loss.value, yb, out)
            grad, start = timed("loss gradient", loss_gradient.start, net, out, yb, batch_size)
            for name, layer in zip(names[start::-1], net.layers[start::-1], strict=True):
                grad = timed(f"{name} backward", layer.backward, grad)
            timed(f"{type(optimizer).__name__} step", optimizer.step, net.param_layers)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    rows = [(key, seconds / steps * 1e6) for key, seconds in totals.items()]
    return {
        "network": network,
        "batch_size": batch_size,
        "dtype": dtype,
        "steps": steps,
        "rows": rows,
        "total_us": sum(r[1] for r in rows),
        "minor_faults_per_step": faults / steps,
    }


def format_profile(result: dict) -> str:
    b, dtype, total = result["batch_size"], result["dtype"], result["total_us"]
    lines = [
        f"### cnn step profile, {result.get('network', 'notebook')} network, batch {b} {dtype}: {total:,.0f} us/step "
        f"({b / total * 1e6:,.0f} samples/s, one thread), {result.get('minor_faults_per_step', 0):.1f} minor page "
        "faults/step"
    ]
    lines += ["| call | us/step | share |", "|---|---:|---:|"]
    for key, us in sorted(result["rows"], key=lambda r: -r[1]):
        lines.append(f"| {key} | {us:,.1f} | {us / total:.0%} |")
    return "\n".join(lines)
