"""Where a training step's time goes: cnn's step timed call by call on one thread, with the minor page faults
per step (fresh memory the allocator had to map). The step is the one fit runs on one thread: the batch-1
SGD step (cnn.fast.rank1_sgd_step) where it applies, else the plain step (cnn.step.plain_step; from 64
samples on fit splits it over two threads, cnn.parallel)."""

import resource
import time
from collections import defaultdict

import numpy as np

import cnn
from benchmarks import networks, trainers


def profile_step(network: str, batch_size: int, dtype: str, steps: int, warmup: int = 3) -> dict:
    """Mean microseconds per step of each call: batch indexing, every layer's forward and backward, the loss
    gradient where backward starts and the optimizer's updates (fit evaluates the loss once per epoch, not
    per step).
    -> {"network", "batch_size", "dtype", "steps", "rows": [(call, us)], "total_us", "minor_faults_per_step"}."""
    from cnn import fast, threads, training
    from cnn import step as cnn_step

    spec = networks.NETWORKS[network]
    net, loss, optimizer = spec.build(dtype, trainers.SEED)
    loss_gradient = cnn_step.LossGradient.for_network(net, loss)
    x0, labels = networks.training_images(spec.digits)
    n = (steps + warmup) * batch_size
    x, y = networks.tile(x0.astype(dtype), n), networks.tile(cnn.one_hot(labels, spec.n_classes, dtype), n)
    order = np.random.default_rng(0).permutation(n)
    names = [f"{i} {type(layer).__name__}" for i, layer in enumerate(net.layers)]
    rank1 = training.choose_step(net, optimizer, batch_size) is fast.rank1_sgd_step
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
            grad, start = timed("loss gradient", loss_gradient.start, net, out, yb, batch_size)
            if rank1:  # as fast.rank1_sgd_step runs it
                position = {id(layer): i for i, layer in enumerate(net.param_layers)}
                optimizer.begin_step()
                for name, layer in zip(names[start::-1], net.layers[start::-1], strict=True):
                    grad, factors = timed(f"{name} backward", layer.backward_rank1, grad)
                    for key, param in layer.params.items():
                        state_key = (position[id(layer)], key)
                        if key in factors:
                            timed(
                                f"{name} rank-1 {key} update", optimizer.update_outer, state_key, param, *factors[key]
                            )
                        else:
                            timed(f"{name} {key} update", optimizer.update, state_key, param, layer.grads[key])
                continue
            for name, layer in zip(names[start::-1], net.layers[start::-1], strict=True):
                grad = timed(f"{name} backward", layer.backward, grad)
            timed(f"{type(optimizer).__name__} step", optimizer.step, net.param_layers)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    rows = [(key, seconds / steps * 1e6) for key, seconds in totals.items()]
    return {
        "network": network,
        "step": "rank1_sgd_step" if rank1 else "plain_step",
        "batch_size": batch_size,
        "dtype": dtype,
        "steps": steps,
        "rows": rows,
        "total_us": sum(r[1] for r in rows),
        "minor_faults_per_step": faults / steps,
    }
