"""Where a training step's time goes: cnn's step (as Sequential.fit runs it) timed call by call."""

import time
from collections import defaultdict

import numpy as np

from benchmarks import data, runners


def profile_step(batch_size: int, dtype: str, steps: int, warmup: int = 3) -> dict:
    """Mean microseconds per step of each call: batch indexing, every layer's forward and backward, the loss,
    the fused (a - y) / n gradient and each layer's SGD update. -> {"rows": [(call, us)], "total_us": ...}."""
    import cnn

    net = cnn.Sequential(cnn.build(runners.NOTEBOOK_LAYERS), init="normal", seed=runners.SEED, dtype=dtype)
    loss, optimizer = cnn.BinaryCrossEntropy(), cnn.SGD(runners.LEARNING_RATE)
    x0, labels = data.training_images()
    n = (steps + warmup) * batch_size
    x, y = data.tile(x0.astype(dtype), n), data.tile(data.one_hot(labels, 2, dtype), n)
    order = np.random.default_rng(0).permutation(n)
    names = [f"{i} {type(layer).__name__}" for i, layer in enumerate(net.layers)]
    totals: dict[str, float] = defaultdict(float)

    def timed(key: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        totals[key] += time.perf_counter() - start
        return out

    for step in range(steps + warmup):
        if step == warmup:
            totals.clear()
        idx = order[step * batch_size : (step + 1) * batch_size]
        xb, yb = timed("index batch", lambda i: (x[i], y[i]), idx)
        out = xb
        for name, layer in zip(names, net.layers, strict=True):
            out = timed(f"{name} forward", layer.forward, out)
        timed("loss value", loss.value, yb, out)
        grad = timed("fused gradient (a - y) / n", lambda o, t: (o - t) / t.size, out, yb)
        for name, layer in zip(names[-2::-1], net.layers[-2::-1], strict=True):
            grad = timed(f"{name} backward", layer.backward, grad)
        for name, layer in zip(names, net.layers, strict=True):
            if layer.params:
                timed(f"{name} SGD update", optimizer.step, [layer])
    rows = [(key, seconds / steps * 1e6) for key, seconds in totals.items()]
    return {"batch_size": batch_size, "dtype": dtype, "steps": steps, "rows": rows, "total_us": sum(r[1] for r in rows)}


def format_profile(result: dict) -> str:
    b, dtype, total = result["batch_size"], result["dtype"], result["total_us"]
    lines = [f"### cnn step profile, batch {b} {dtype}: {total:,.0f} us/step ({b / total * 1e6:,.0f} samples/s)"]
    lines += ["| call | us/step | share |", "|---|---:|---:|"]
    for key, us in sorted(result["rows"], key=lambda r: -r[1]):
        lines.append(f"| {key} | {us:,.1f} | {us / total:.0%} |")
    return "\n".join(lines)
