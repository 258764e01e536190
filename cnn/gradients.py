"""layer.grads: gradients by parameter name, where one may be kept as a product g.T @ x until it is read.

Dense's weight gradient is dL/dW = g.T @ x (g (N, out) the output gradient, x (N, in) the input). At
batch 1 that is an outer product of 100 x 3380 values: writing it and reading it back in the update costs
more than the rest of the step. So Dense records the pair (g, x) instead; SGD applies
W -= lr * g.T @ x in one BLAS call (rank-1 update, ger) that never writes the gradient, and reading
grads["weights"] (a test, Adam, momentum) computes it into its array first. A layer computes gradients, an
optimizer applies them: the factors are just another exact representation of the same gradient.
"""

from collections.abc import Iterator, MutableMapping

import numpy as np


class Gradients(MutableMapping):
    """name -> gradient array (same shape and dtype as the parameter), some held as factors until read."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = dict(arrays)
        self._products: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def set_product(self, name: str, g: np.ndarray, x: np.ndarray) -> None:
        """Record grads[name] = g.T @ x, g (N, a), x (N, b), without computing it (the arrays are kept)."""
        self._products[name] = (g, x)

    def product(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The factors (g, x) of a pending grads[name] = g.T @ x, or None when it is a plain array."""
        return self._products.get(name)

    def discard_products(self) -> None:
        """Forget pending products (their arrays are about to be overwritten)."""
        self._products.clear()

    def __getitem__(self, name: str) -> np.ndarray:
        out = self._arrays[name]
        factors = self._products.pop(name, None)
        if factors is not None:
            g, x = factors
            if len(g) == 1:  # `g.T @ x` with inner dimension 1 misses BLAS (10x slower than outer)
                np.multiply.outer(g[0], x[0], out=out)
            else:
                np.matmul(g.T, x, out=out)
        return out

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._products.pop(name, None)
        self._arrays[name] = value

    def __delitem__(self, name: str) -> None:
        self._products.pop(name, None)
        del self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        pending = ", ".join(f"{name} (pending g.T @ x)" if name in self._products else name for name in self._arrays)
        return f"Gradients({pending})"
