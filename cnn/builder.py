"""cnn.build: a layer list from spec dicts (what params.yaml holds under train.layers), shapes inferred.

Specs: {type: conv, depth: 5, kernel_size: 3, padding: 0|1|..|same, stride: 1, bias: untied|tied}
{type: maxpool, size: 2, stride: 2}  {type: avgpool, size: 2, stride: 2}  {type: global_avgpool}
{type: flatten}  {type: reshape, shape: [...]}  {type: dense, units: 100}  {type: dense} (n_classes units)
{type: dropout, rate: 0.5}  {type: batchnorm, momentum: 0.1, eps: 1e-5}  {type: sigmoid|tanh|relu|softmax}
{type: standardize, mean: 0.1307, std: 0.3081} (y = (x - mean) / std, fixed numbers, both required)

layer_from_config: a layer from its ``layer.config()`` (what a model file holds). It lives here, where every built-in
layer's module is imported: a layer class registers its name when its module loads (Layer.__init_subclass__).
"""

from collections.abc import Sequence
from typing import Any

from .activations import ReLU, Sigmoid, Softmax, Tanh
from .conv import Convolutional
from .dropout import Dropout
from .errors import ArchitectureError
from .layers import LAYER_CLASSES, Dense, Flatten, Layer, Reshape
from .norm import BatchNorm
from .pool import AvgPool, GlobalAvgPool, MaxPool
from .standardize import Standardize

_ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "softmax": Softmax}
# type -> (required keys, optional keys)
_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conv": (("depth", "kernel_size"), ("padding", "stride", "bias")),
    "maxpool": ((), ("size", "stride")),
    "avgpool": ((), ("size", "stride")),
    "global_avgpool": ((), ()),
    "dropout": ((), ("rate",)),
    "batchnorm": ((), ("momentum", "eps")),
    "standardize": (("mean", "std"), ()),
    "flatten": ((), ()),
    "reshape": (("shape",), ()),
    "dense": ((), ("units",)),
    **{name: ((), ()) for name in _ACTIVATIONS},
}
LAYER_TYPES = tuple(_KEYS)

# The notebook's network: Conv(1->5, 3x3) -> Sigmoid -> Reshape -> Dense(3380->100) -> Sigmoid -> Dense -> Sigmoid.
NOTEBOOK_LAYERS: list[dict[str, Any]] = [
    {"type": "conv", "depth": 5, "kernel_size": 3, "bias": "untied"},
    {"type": "sigmoid"},
    {"type": "flatten"},
    {"type": "dense", "units": 100},
    {"type": "sigmoid"},
    {"type": "dense"},
    {"type": "sigmoid"},
]


def _positive_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArchitectureError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def _construct(where: str, cls: type[Layer], *args: Any, **kwargs: Any) -> Layer:
    """cls(*args, **kwargs), its ArchitectureError prefixed with where the spec is."""
    try:
        return cls(*args, **kwargs)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{where}: {exc}") from None


def build(
    layer_specs: Sequence[dict[str, Any]], input_shape: tuple[int, ...] = (1, 28, 28), n_classes: int = 2
) -> list[Layer]:
    """Layers for `layer_specs`, each sized from the previous one's output, starting from per-sample
    `input_shape`. The last layer must output (n_classes,). Raises ArchitectureError naming
    train.layers[i] and the shapes involved.
    """
    if not isinstance(layer_specs, (list, tuple)) or not layer_specs:
        raise ArchitectureError(f"train.layers must be a non-empty list of layer specs, got {layer_specs!r}")
    shape = tuple(int(d) for d in input_shape)
    layers: list[Layer] = []
    for i, spec in enumerate(layer_specs):
        layer = _build_one(i, spec, shape, n_classes)
        shape = layer.connect(shape)
        layers.append(layer)
    if shape != (n_classes,):
        raise ArchitectureError(
            f"train.layers[{len(layers) - 1}] ({layer_specs[-1]['type']}): the network ends with output "
            f"shape {shape}, but there are {n_classes} classes; end with {{type: dense}} (n_classes units) "
            f"and an activation"
        )
    return layers


def _build_one(i: int, spec: Any, shape: tuple[int, ...], n_classes: int) -> Layer:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ArchitectureError(f"train.layers[{i}]: expected a mapping with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind not in _KEYS:
        raise ArchitectureError(f"train.layers[{i}]: unknown type {kind!r}; choose one of {', '.join(LAYER_TYPES)}")
    where = f"train.layers[{i}] ({kind})"
    required, optional = _KEYS[kind]
    missing = [k for k in required if k not in spec]
    if missing:
        raise ArchitectureError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(spec) - {"type", *required, *optional})
    if unknown:
        allowed = ", ".join((*required, *optional)) or "no other keys"
        raise ArchitectureError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}")

    if kind in ("conv", "maxpool", "avgpool", "global_avgpool") and len(shape) != 3:
        raise ArchitectureError(
            f"{where}: expects an image input (C, H, W), got {shape}; add {{type: reshape, shape: [C, H, W]}} before it"
        )
    if kind == "conv":
        depth = _positive_int(spec["depth"], where, "depth")
        k = _positive_int(spec["kernel_size"], where, "kernel_size")
        bias, padding, stride = spec.get("bias", "untied"), spec.get("padding", 0), spec.get("stride", 1)
        return _construct(where, Convolutional, shape, k, depth, bias=bias, padding=padding, stride=stride)
    if kind in ("maxpool", "avgpool"):
        size = _positive_int(spec.get("size", 2), where, "size")
        stride = _positive_int(spec.get("stride", size), where, "stride")
        return _construct(where, MaxPool if kind == "maxpool" else AvgPool, shape, size, stride)
    if kind == "global_avgpool":
        return GlobalAvgPool(shape)
    if kind == "dropout":
        return _construct(where, Dropout, shape, spec.get("rate", 0.5))
    if kind == "batchnorm":
        return _construct(where, BatchNorm, shape, spec.get("momentum", 0.1), spec.get("eps", 1e-5))
    if kind == "standardize":
        return _construct(where, Standardize, shape, mean=spec["mean"], std=spec["std"])
    if kind == "flatten":
        return Flatten(shape)
    if kind == "reshape":
        target = spec["shape"]
        if not isinstance(target, (list, tuple)) or not target:
            raise ArchitectureError(f"{where}: shape must be a list of positive integers, got {target!r}")
        target = tuple(_positive_int(d, where, "shape") for d in target)
        return _construct(where, Reshape, shape, target)
    if kind == "dense":
        if len(shape) != 1:
            raise ArchitectureError(f"{where}: expects a flat input, got {shape}; add {{type: flatten}} before it")
        units = spec.get("units")
        units = n_classes if units is None else _positive_int(units, where, "units")
        return Dense(shape[0], units)
    if kind == "softmax" and len(shape) != 1:
        raise ArchitectureError(f"{where}: expects a flat input, got {shape}; add {{type: flatten}} before it")
    return _ACTIVATIONS[kind]()


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``layer.config()``. Raises ValueError for an unknown type or bad arguments."""
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"a layer config must be a dict with a 'type' key, got {config!r}")
    kwargs = dict(config)
    name = kwargs.pop("type")
    cls = LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown layer type {name!r}; known types: {', '.join(sorted(LAYER_CLASSES))}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for layer {name}: {exc}") from None
