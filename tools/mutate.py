"""make mutate: put plausible bugs into a copy of the project, one at a time, and check the tests catch each.

Each mutation names a file, a snippet that must occur there exactly once, its replacement, and the tests
that should fail. A mutation the tests let pass ("survived") is a gap in the suite; a snippet no longer
found ("stale") means the code moved on and the list must follow. Exit code 0 only if every mutation is
caught.

    python tools/mutate.py            # all
    python tools/mutate.py adam ties  # the mutations whose names contain these words
"""

import functools
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "adam: bias correction without its square root",
        "cnn/optimizers.py",
        "correction = math.sqrt(1 - self.beta2**self.t)",
        "correction = 1 - self.beta2**self.t",
        ("tests/test_network.py::test_adam_two_steps_by_hand",),
    ),
    Mutation(
        "sgd momentum: the parameters stepped up the momentum buffer (p += lr * b)",
        "cnn/optimizers.py",
        "            blas.axpy(param, buf, -self.learning_rate)",
        "            blas.axpy(param, buf, self.learning_rate)",
        ("tests/test_network.py::test_sgd_momentum_and_adam_follow_their_formulas",),
    ),
    Mutation(
        "dense: bias gradient averaged over the batch instead of summed",
        "cnn/layers.py",
        'np.sum(output_gradient, axis=0, out=self.grads["biases"])',
        'np.mean(output_gradient, axis=0, out=self.grads["biases"])',
        ("tests/test_layers.py", "tests/test_network.py"),
    ),
    Mutation(
        "loss shortcut: BCE divided by rows only, not rows x outputs",
        "cnn/step.py",
        "return cls(loss, math.prod(net.output_shape))",
        "return cls(loss, 1)",
        ("tests/test_losses.py", "tests/test_network.py"),
    ),
    Mutation(
        "loss shortcut: a half batch normalised by its own rows",
        "cnn/step.py",
        "return (outputs - y) / (batch_rows * self.logits_divisor), len(net.layers) - 2",
        "return (outputs - y) / (len(y) * self.logits_divisor), len(net.layers) - 2",
        ("tests/test_losses.py", "tests/test_parallel.py"),
    ),
    Mutation(
        "split step: the second half's gradient dropped",
        "cnn/parallel.py",
        "np.add(grads[0][elements], grads[1][elements], out=grads[2][elements])",
        "np.add(grads[0][elements], 0 * grads[1][elements], out=grads[2][elements])",
        ("tests/test_parallel.py",),
    ),
    Mutation(
        "update in parts: the second part of a large parameter never updated",
        "cnn/parallel.py",
        "optimizer.update(key, layer.params[name], layer.grads[name], elements)",
        "optimizer.update(key, layer.params[name], layer.grads[name], elements) if part == 0 else None",
        ("tests/test_parallel.py",),
    ),
    Mutation(
        "update in parts: a large parameter cut in the middle of a BLAS block",
        "cnn/parallel.py",
        "cut = size // 2 // CUT_MULTIPLE * CUT_MULTIPLE",
        "cut = size // 2",
        ("tests/test_optimizers.py",),
    ),
    Mutation(
        "split batch norm: the parts' variances added without the spread of their means",
        "cnn/norm.py",
        "m2 + m2_b + d * d * (m * m_b / total)",
        "m2 + m2_b",
        ("tests/test_batchnorm.py",),
    ),
    Mutation(
        "split batch norm: the parts' means averaged as if of equal size",
        "cnn/norm.py",
        "mean + d * (m_b / total)",
        "mean + d * 0.5",
        ("tests/test_batchnorm.py",),
    ),
    Mutation(
        "split batch norm: dx from the first part's gradient sums",
        "cnn/norm.py",
        "dgamma, dbeta = dgamma + dgamma_b, dbeta + dbeta_b",
        "dgamma, dbeta = dgamma + 0 * dgamma_b, dbeta + 0 * dbeta_b",
        ("tests/test_batchnorm.py",),
    ),
    Mutation(
        "split batch norm: the halves go on with the first half's statistics",
        "cnn/parallel.py",
        "whole = combine([first, second])",
        "whole = combine([first])",
        ("tests/test_batchnorm.py",),
    ),
    Mutation(
        "rank-1 step: optimizer state keyed by position in net.layers, not among layers with parameters",
        "cnn/fast.py",
        "position = {id(layer): i for i, layer in enumerate(net.param_layers)}",
        "position = {id(layer): i for i, layer in enumerate(net.layers)}",
        ("tests/test_fast.py",),
    ),
    Mutation(
        "ger: the rank-1 update with the factors swapped",
        "cnn/blas.py",
        "_GER[param.dtype](a, x[0], g[0], a=param.T, overwrite_a=True)",
        "_GER[param.dtype](-a, x[0], g[0], a=param.T, overwrite_a=True)",
        ("tests/test_fast.py",),
    ),
    Mutation(
        "threads: products keep the caller's thread count",
        "cnn/threads.py",
        "            if n != 1:\n                lib.set_num_threads(1)",
        "            pass",
        ("tests/test_parallel.py",),
    ),
    Mutation(
        "numerics: the canonical kernel not pinned",
        "pipeline/numerics.py",
        'environ["OPENBLAS_CORETYPE"] = BLAS_CORE',
        "pass",
        ("tests/test_reproducible.py::test_canonical_mode_overrides_the_kernel_the_environment_asks_for",),
    ),
    Mutation(
        "download: the start offset of a 206 Content-Range not checked",
        "pipeline/download.py",
        "if content_range is None or content_range[0] != have:",
        "if content_range is None:",
        ("tests/test_download.py",),
    ),
    Mutation(
        "download: a cut-off transfer never resumed with a Range request",
        "pipeline/download.py",
        "if have and self.ranges:",
        "if False:",
        (
            "tests/test_download.py::test_body_cut_off_midway_resumes_with_a_range_request",
            "tests/test_download.py::test_a_reset_midway_resumes_from_what_arrived",
        ),
    ),
    Mutation(
        "predict: probabilities of a softmax output normalised again as scores",
        "pipeline/predict.py",
        """    if isinstance(last, cnn.Softmax):
        return outputs
""",
        """    if isinstance(last, cnn.Softmax):
        return np.sqrt(outputs) / np.sqrt(outputs).sum(axis=1, keepdims=True)
""",
        ("tests/test_predict.py::test_pictures_predict_like_the_original_arrays",),
    ),
    Mutation(
        "params: train.learning_rate 0 accepted",
        "pipeline/params.py",
        "lambda v: _is_number(v) and v > 0,",
        "lambda v: _is_number(v) and v >= 0,",
        ("tests/test_params.py",),
    ),
    Mutation(
        "params: momentum and validation_fraction 1 accepted",
        "pipeline/params.py",
        "return Rule(lambda v: _is_number(v) and 0 <= v < 1, allowed,",
        "return Rule(lambda v: _is_number(v) and 0 <= v <= 1, allowed,",
        ("tests/test_params.py",),
    ),
    Mutation(
        "params: digit 10 accepted in data.digits",
        "pipeline/params.py",
        "and all(_is_int(d) and 0 <= d <= 9 for d in value)",
        "and all(_is_int(d) and 0 <= d <= 10 for d in value)",
        ("tests/test_params.py",),
    ),
    Mutation(
        "metrics: precision and recall swapped",
        "pipeline/metrics.py",
        """    precision = _ratio(hits, counts.sum(axis=0))
    recall = _ratio(hits, counts.sum(axis=1))""",
        """    precision = _ratio(hits, counts.sum(axis=1))
    recall = _ratio(hits, counts.sum(axis=0))""",
        ("tests/test_metrics.py",),
    ),
    Mutation(
        "conv: the input gradient shifts kernel rows by the image's height instead of its width",
        "cnn/conv.py",
        "flat[:, i * W + j : i * W + j + size] += cols[:, offset]",
        "flat[:, i * H + j : i * H + j + size] += cols[:, offset]",
        ("tests/test_fast.py",),
    ),
    Mutation(
        "relu: the gradient also passes where the output is zero",
        "cnn/activations.py",
        "(self.y > 0).astype(output_gradient.dtype)",
        "(self.y >= 0).astype(output_gradient.dtype)",
        ("tests/test_layers.py", "tests/test_kernels.py"),
    ),
    Mutation(
        "maxpool: the gradient of a tie goes to the last maximum",
        "cnn/pool.py",
        """        for plane in planes[-2::-1]:
            winner += 1
            winner *= plane != y""",
        """        for o, plane in enumerate(planes):
            winner[plane == y] = o""",
        ("tests/test_layers.py", "tests/test_fast.py", "tests/test_kernels.py"),
    ),
    Mutation(
        "schedules: step decay counted in steps, not epochs",
        "cnn/schedules.py",
        "self.gamma ** (epoch // self.step_size)",
        "self.gamma ** (step // self.step_size)",
        ("tests/test_schedules.py",),
    ),
    Mutation(
        "schedules: cosine climbs back up after the run",
        "cnn/schedules.py",
        "t = min(step, self.total_steps)",
        "t = step",
        ("tests/test_schedules.py",),
    ),
    Mutation(
        "schedules: one-cycle peaks a step late",
        "cnn/schedules.py",
        "peak = self.pct_start * self.total_steps - 1",
        "peak = self.pct_start * self.total_steps",
        ("tests/test_schedules.py",),
    ),
    Mutation(
        "augment: rotation the wrong way round",
        "cnn/augment.py",
        "rows = cos * u + sin * v + (h - 1) / 2",
        "rows = cos * u - sin * v + (h - 1) / 2",
        ("tests/test_augment.py",),
    ),
    Mutation(
        "augment: a point beyond the border reads the edge pixel instead of the zero outside",
        "cnn/augment.py",
        "np.clip(rows, -1, h)",
        "np.clip(rows, 0, h - 1)",
        ("tests/test_augment.py",),
    ),
    Mutation(
        "augment: the elastic field smoothed across the batch",
        "cnn/augment.py",
        "sigma=(0, 0, sigma, sigma)",
        "sigma=(0, sigma, sigma, sigma)",
        ("tests/test_augment.py",),
    ),
    Mutation(
        "augment: channels of a sample get different transforms",
        "cnn/augment.py",
        "(np.repeat(axis, c, axis=0) for axis in coordinates)",
        "(np.tile(axis, (c, 1, 1)) for axis in coordinates)",
        ("tests/test_augment.py",),
    ),
    Mutation(
        "augment: the framed images laid out without their frame rows",
        "cnn/augment.py",
        "rows += 1 + (h + 2) * np.arange(n * c, dtype=np.float64)[:, None, None]",
        "rows += 1 + h * np.arange(n * c, dtype=np.float64)[:, None, None]",
        ("tests/test_augment.py",),
    ),
    Mutation(
        "augment: row coordinates not rounded before the images' offsets are added",
        "cnn/augment.py",
        "rows = np.round(np.clip(rows, -1, h) * _GRID) / _GRID",
        "rows = np.clip(rows, -1, h)",
        ("tests/test_augment.py",),
    ),
    Mutation(
        "conv init: fan-in without the input channels",
        "cnn/conv.py",
        "(D, C, k, k), C * k * k, D * k * k, dtype)",
        "(D, C, k, k), k * k, D * k * k, dtype)",
        ("tests/test_init.py",),
    ),
    Mutation(
        "maxpool: config() loses the stride",
        "cnn/pool.py",
        '            "stride": self.stride,\n',
        "",
        ("tests/test_pooling.py",),
    ),
    Mutation(
        "maxpool: backward treats windows that tile the height only as tiling the whole input",
        "cnn/pool.py",
        "H == Ho * self.size and W == Wo * self.size",
        "H == Ho * self.size",
        ("tests/test_conv_pool_edges.py", "tests/test_kernels.py"),
    ),
    Mutation(
        "evaluate: the output index reported instead of the digit",
        "pipeline/evaluate.py",
        "pred = np.asarray(classes)[outputs.argmax(axis=1)]",
        "pred = outputs.argmax(axis=1)",
        ("tests/test_evaluate_digits.py",),
    ),
    Mutation(
        "numerics: the numpy-imported-first guard removed",
        "pipeline/numerics.py",
        """    if numpy_imported:
        return Numerics("native", "numpy was imported before the pipeline could pin its kernels")
""",
        "",
        ("tests/test_numerics.py",),
    ),
    Mutation(
        "adadelta: the step not scaled by the running mean of past steps",
        "cnn/optimizers.py",
        "np.add(u, self.epsilon, out=d)",
        "np.add(0 * u, self.epsilon, out=d)",
        ("tests/test_optimizers.py",),
    ),
    Mutation(
        "weight decay: not scaled by the learning rate",
        "cnn/optimizers.py",
        "param *= 1 - self.learning_rate * self.weight_decay",
        "param *= 1 - self.weight_decay",
        ("tests/test_optimizers.py",),
    ),
    Mutation(
        "nesterov: the look-ahead uses the old momentum buffer",
        "cnn/optimizers.py",
        """        buf *= self.momentum  # zeros at step 1, so b = g
        buf += grad
        if self.nesterov:
            (d,) = scratch
            np.multiply(buf, self.momentum, out=d)""",
        """        if self.nesterov:
            (d,) = scratch
            np.multiply(buf, self.momentum, out=d)
        buf *= self.momentum
        buf += grad
        if self.nesterov:""",
        ("tests/test_optimizers.py",),
    ),
    Mutation(
        "resume: the stochastic layers' generators start afresh",
        "cnn/training.py",
        "net.layers[int(i)].rng.bit_generator.state = layer_state",
        "pass",
        ("tests/test_training.py",),
    ),
    Mutation(
        "predict: runs in whatever mode the net was left in",
        "cnn/network.py",
        """        self.set_training(False)
        if len(x) == 0:""",
        """        if len(x) == 0:""",
        ("tests/test_training.py",),
    ),
    Mutation(
        "npz: local headers with the real sizes, as zipfile before 3.11.7 wrote them",
        "cnn/zipstore.py",
        "entry.crc, MASK32, MASK32,",
        "entry.crc, entry.size, entry.size,",
        ("tests/test_npz.py",),
    ),
    Mutation(
        "npz: an offset past 2 GiB kept in the central directory's 4-byte field",
        "cnn/zipstore.py",
        "offset = MASK32 if big_offset else entry.offset",
        "offset = entry.offset & MASK32",
        ("tests/test_npz.py",),
    ),
    Mutation(
        "standardize: multiplied by the reciprocal of std, not divided (not torch's bits)",
        "cnn/standardize.py",
        "y /= self.std",
        "y *= 1 / self.std",
        ("tests/test_standardize.py",),
    ),
    Mutation(
        "standardize: backward passes dy on without the 1 / std",
        "cnn/standardize.py",
        "return output_gradient / self.std",
        "return output_gradient",
        ("tests/test_standardize.py",),
    ),
    Mutation(
        "standardize twin: PyTorch multiplies by the reciprocal of std",
        "benchmarks/torch_models.py",
        "return x.sub(self.mean).div(self.std)",
        "return x.sub(self.mean).mul(1 / self.std)",
        ("tests/test_benchmarks.py::test_pytorch_twin_of_standardize_gives_the_same_bits_forward_and_backward",),
    ),
    Mutation(
        "kernels: maxpool winner the last maximum of its window, not the first",
        "cnn/kernels.py",
        "k = o if v > m else k",
        "k = o if v >= m else k",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: maxpool of equal values keeps the earlier (maximum(0.0, -0.0) = 0.0, numpy gives -0.0)",
        "cnn/kernels.py",
        "m = m if (m > v or m != m) else v",
        "m = m if (m >= v or m != m) else v",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: maxpool backward writes +0.0 beside the winner where numpy's 0.0 * dy gives -0.0",
        "cnn/kernels.py",
        "= g * eye[k, o]",
        "= g * eye[k, o] + 0.0",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: relu backward writes 0.0 where the unit is off, not 0.0 * dy (-0.0, NaN)",
        "cnn/kernels.py",
        "dx[k] = dy[k] * (one if y[k] > 0 else zero)",
        "dx[k] = dy[k] if y[k] > 0 else zero",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: batchnorm's kernels not cached on disk (compiled again in every process)",
        "cnn/batchnorm_kernels.py",
        "jit = numba.njit(cache=True, nogil=True)",
        "jit = numba.njit(cache=False, nogil=True)",
        ("tests/test_kernels.py::test_every_kernel_loads_from_numbas_cache_in_the_next_process",),
    ),
    Mutation(
        "kernels: batchnorm sums blocks of up to 1024 terms, not numpy's pairwise blocks of 128",
        "cnn/kernels.py",
        "    if n <= 128:\n        return np.array([[0, 0, n]], dtype=np.int64)",
        "    if n <= 1024:\n        return np.array([[0, 0, n]], dtype=np.int64)",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: batchnorm sums a one-channel batch plane by plane, where numpy sums the joined planes",
        "cnn/kernels.py",
        "return x.reshape(1, 1, -1) if C == 1 else x.reshape(N, C, H * W)",
        "return x.reshape(N, C, H * W)",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: batchnorm halves a pairwise sum in the middle, where numpy cuts at a multiple of 8",
        "cnn/kernels.py",
        "half = n // 2 - (n // 2) % 8",
        "half = n // 2",
        ("tests/test_kernels.py",),
    ),
    Mutation(
        "kernels: batchnorm input gradient subtracts both terms at once",
        "cnn/batchnorm_kernels.py",
        "xp[i] = ((gp[i] * m - b) - hp[i] * g) * s",
        "xp[i] = (gp[i] * m - (b + hp[i] * g)) * s",
        ("tests/test_kernels.py",),
    ),
)


def project_copy(target: Path) -> None:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listing.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def tests_pass(tests: tuple[str, ...], workdir: Path) -> bool:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=workdir, capture_output=True).returncode == 0


@functools.cache
def baseline_passes(tests: tuple[str, ...], workdir: Path) -> bool:
    """Whether these tests pass on the unmutated copy (once per set of tests: every mutation restores it)."""
    return tests_pass(tests, workdir)


def run(mutation: Mutation, workdir: Path) -> tuple[str, float]:
    """'caught', 'survived', 'stale' (snippet not found once) or 'broken' (its tests fail without the
    mutation, so a failure would prove nothing), and the seconds its tests took."""
    path = workdir / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        return "stale", 0.0
    if not baseline_passes(mutation.tests, workdir):
        return "broken", 0.0
    path.write_text(original.replace(mutation.old, mutation.new))
    start = time.perf_counter()
    try:
        caught = not tests_pass(mutation.tests, workdir)
    finally:
        path.write_text(original)
    return ("caught" if caught else "survived"), time.perf_counter() - start


def main(words: list[str]) -> int:
    chosen = [m for m in MUTATIONS if all(w.lower() in m.name.lower() for w in words)]
    if not chosen:
        print(f"no mutation matches {' '.join(words)!r}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        workdir = Path(tmp)
        project_copy(workdir)
        outcomes = []
        for mutation in chosen:
            outcome, seconds = run(mutation, workdir)
            outcomes.append(outcome)
            print(f"{outcome:8}  {seconds:5.1f} s  {mutation.name}  ({mutation.path})", flush=True)
    caught = outcomes.count("caught")
    print(f"\n{caught} of {len(chosen)} mutations caught", end="")
    gaps = [o for o in outcomes if o != "caught"]
    print(f"; {len(gaps)} not ({', '.join(sorted(set(gaps)))})" if gaps else "")
    return 0 if not gaps else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
