"""numba kernels of BatchNorm over conv feature maps as (N, C, P) planes: cnn.kernels' batchnorm_* functions call
them and say what each computes. Plain functions until `compiled()` (cnn.kernels calls it on first use) compiles
them: importing this module does not import numba, so the train stage loads it, and its checkpoints' fingerprint
covers it, without numba. Module-level functions, not closures: numba's on-disk cache keys a closure by its free
variables, and a kernel calling `pairwise` through one would compile again in every process.
"""

from collections.abc import Callable

ENTRY_POINTS = ("statistics", "normalize", "gradient_sums", "input_gradient")


def compiled() -> tuple[Callable, ...]:
    """The ENTRY_POINTS compiled (or loaded from numba's on-disk cache). Each function of this module is rebound
    to its compiled version, callees first, so that a kernel's calls (statistics -> pairwise -> pairwise_block)
    compile as calls to compiled code. Once per process (cnn.kernels' _build)."""
    import numba

    jit = numba.njit(cache=True, nogil=True)
    module = globals()
    for name in ("pairwise_block", "pairwise", *ENTRY_POINTS):
        module[name] = jit(module[name])
    return tuple(module[name] for name in ENTRY_POINTS)


def pairwise(a, plan, zero, sums):
    # numpy's pairwise_sum of a (numpy/_core/src/umath/loops_utils.h.src): up to 128 terms a block
    # (pairwise_block); above, the halves (the first a multiple of 8 long) summed apart and added. numpy recurses;
    # numba's cache cannot load a recursive function, so cnn.kernels.pairwise_plan writes the recursion out as a
    # postfix program: (0, start, length) pushes a block's sum, (1, 0, 0) adds the last two (first + second).
    # sums: scratch of 64 values in a's dtype
    top = 0
    for k in range(plan.shape[0]):
        if plan[k, 0] == 0:
            sums[top] = pairwise_block(a, plan[k, 1], plan[k, 2], zero)
            top += 1
        else:
            top -= 1
            sums[top - 1] = sums[top - 1] + sums[top]
    return sums[0]


def pairwise_block(a, start, n, zero):
    # below 8 terms in order from zero; up to 128, eight running sums over every eighth term, combined as a
    # tree, then the rest in order
    if n < 8:
        res = zero
        for i in range(n):
            res += a[start + i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - n % 8:
        k = start + i
        r0 += a[k]
        r1 += a[k + 1]
        r2 += a[k + 2]
        r3 += a[k + 3]
        r4 += a[k + 4]
        r5 += a[k + 5]
        r6 += a[k + 6]
        r7 += a[k + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return res


def statistics(x, m, plan, row, zero, sums, mean, m2):
    # np.sum over (0, 2, 3) is zero plus each plane's pairwise sum, planes in sample order; mean = sum / m
    N, C, P = x.shape
    for c in range(C):
        total = zero
        for n in range(N):
            total += pairwise(x[n, c], plan, zero, sums)
        mu = total / m
        total = zero
        for n in range(N):
            plane = x[n, c]
            for i in range(P):
                d = plane[i] - mu
                row[i] = d * d
            total += pairwise(row, plan, zero, sums)
        mean[c], m2[c] = mu, total


def normalize(x, mean, inv_std, gamma, beta, xhat, y):
    N, C, P = x.shape
    for n in range(N):
        for c in range(C):
            mu, inv, g, b = mean[c], inv_std[c], gamma[c], beta[c]
            xp, hp, yp = x[n, c], xhat[n, c], y[n, c]
            for i in range(P):
                h = (xp[i] - mu) * inv
                hp[i] = h
                yp[i] = h * g + b


def gradient_sums(dy, xhat, plan, row, zero, sums, dgamma, dbeta):
    N, C, P = dy.shape
    for c in range(C):
        sum_g, sum_b = zero, zero
        for n in range(N):
            gp, hp = dy[n, c], xhat[n, c]
            for i in range(P):
                row[i] = gp[i] * hp[i]
            sum_g += pairwise(row, plan, zero, sums)
            sum_b += pairwise(gp, plan, zero, sums)
        dgamma[c], dbeta[c] = sum_g, sum_b


def input_gradient(dy, xhat, m, dbeta, dgamma, scale_over_m, dx):
    N, C, P = dy.shape
    for n in range(N):
        for c in range(C):
            b, g, s = dbeta[c], dgamma[c], scale_over_m[c]
            gp, hp, xp = dy[n, c], xhat[n, c], dx[n, c]
            for i in range(P):
                xp[i] = ((gp[i] * m - b) - hp[i] * g) * s
