"""A from-scratch, batch-first numpy CNN that reproduces the notebook it started from.

import cnn
layers = cnn.build([{"type": "conv", "depth": 5, "kernel_size": 3}, {"type": "sigmoid"},
                    {"type": "flatten"}, {"type": "dense", "units": 100}, {"type": "sigmoid"},
                    {"type": "dense"}, {"type": "sigmoid"}])
net = cnn.Sequential(layers, init="normal", seed=0)
net.fit(x, cnn.one_hot(labels, 2), cnn.BinaryCrossEntropy(), cnn.SGD(0.1), epochs=20)

`import cnn` loads none of its modules (nor numpy): a name below loads the module that defines it on first use,
and so does a module's own name (`cnn.step`), by the module `__getattr__` of PEP 562. `cnn.Dense`,
`from cnn import Dense` and `from cnn import *` work as with plain imports, while a program that needs one piece
loads only that piece: the pipeline's data stages write files through `cnn.npz` without loading a layer.
"""

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

# Each public name, by the module that defines it; a new one goes here and in the TYPE_CHECKING block below
# (tests/test_cnn_package.py checks that the two agree).
_EXPORTS = {
    "activations": ("ReLU", "Sigmoid", "Softmax", "Tanh"),
    "augment": ("Augment", "make_augment"),
    "builder": ("LAYER_TYPES", "NOTEBOOK_LAYERS", "build", "layer_from_config"),
    "conv": ("Convolutional",),
    "dropout": ("Dropout",),
    "errors": ("ArchitectureError", "ModelFileError", "TrainingDivergedError"),
    "init": ("INITIALIZERS",),
    "layers": ("Dense", "Flatten", "Layer", "Reshape"),
    "losses": ("LOSSES", "BinaryCrossEntropy", "CategoricalCrossEntropy", "Loss", "MeanSquaredError"),
    "network": ("DTYPES", "Sequential", "one_hot"),
    "norm": ("BatchNorm",),
    "optimizers": ("OPTIMIZERS", "SGD", "Adadelta", "Adam", "Optimizer"),
    "pool": ("AvgPool", "GlobalAvgPool", "MaxPool"),
    "schedules": ("ConstantLR", "CosineLR", "OneCycleLR", "Schedule", "StepDecayLR", "make_schedule"),
    "serialize": ("load", "save"),
    "standardize": ("Standardize",),
    "training": ("BatchProgress", "FitOptions", "TrainingState"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)

if TYPE_CHECKING:  # the same names for type checkers and editors, which do not run __getattr__
    from .activations import ReLU, Sigmoid, Softmax, Tanh
    from .augment import Augment, make_augment
    from .builder import LAYER_TYPES, NOTEBOOK_LAYERS, build, layer_from_config
    from .conv import Convolutional
    from .dropout import Dropout
    from .errors import ArchitectureError, ModelFileError, TrainingDivergedError
    from .init import INITIALIZERS
    from .layers import Dense, Flatten, Layer, Reshape
    from .losses import LOSSES, BinaryCrossEntropy, CategoricalCrossEntropy, Loss, MeanSquaredError
    from .network import DTYPES, Sequential, one_hot
    from .norm import BatchNorm
    from .optimizers import OPTIMIZERS, SGD, Adadelta, Adam, Optimizer
    from .pool import AvgPool, GlobalAvgPool, MaxPool
    from .schedules import ConstantLR, CosineLR, OneCycleLR, Schedule, StepDecayLR, make_schedule
    from .serialize import load, save
    from .standardize import Standardize
    from .training import BatchProgress, FitOptions, TrainingState


def _submodules() -> set[str]:
    return {module.name for module in pkgutil.iter_modules(__path__)}


def __getattr__(name: str) -> Any:
    """Called only for a name not yet in the package: load the module of a public name, or the module itself."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value  # found directly from now on
        return value
    if name in _submodules():
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it in the package
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _submodules())
