"""A from-scratch, batch-first numpy CNN that reproduces the notebook it started from.

import cnn
layers = cnn.build([{"type": "conv", "depth": 5, "kernel_size": 3}, {"type": "sigmoid"},
                    {"type": "flatten"}, {"type": "dense", "units": 100}, {"type": "sigmoid"},
                    {"type": "dense"}, {"type": "sigmoid"}])
net = cnn.Sequential(layers, init="normal", seed=0)
net.fit(x, cnn.one_hot(labels, 2), cnn.BinaryCrossEntropy(), cnn.SGD(0.1), epochs=20)
"""

from .activations import ReLU, Sigmoid, Softmax, Tanh
from .augment import Augment, make_augment
from .builder import LAYER_TYPES, NOTEBOOK_LAYERS, build
from .conv import Convolutional
from .dropout import Dropout
from .errors import ArchitectureError, ModelFileError, TrainingDivergedError
from .init import INITIALIZERS
from .layers import Dense, Flatten, Layer, Reshape, layer_from_config
from .losses import LOSSES, BinaryCrossEntropy, CategoricalCrossEntropy, Loss, MeanSquaredError
from .network import DTYPES, Sequential, one_hot
from .norm import BatchNorm
from .optimizers import OPTIMIZERS, SGD, Adadelta, Adam, Optimizer
from .pool import AvgPool, GlobalAvgPool, MaxPool
from .schedules import ConstantLR, CosineLR, OneCycleLR, Schedule, StepDecayLR, make_schedule
from .serialize import load, save
from .training import BatchProgress, FitOptions, TrainingState

__all__ = [
    "DTYPES",
    "INITIALIZERS",
    "LAYER_TYPES",
    "LOSSES",
    "NOTEBOOK_LAYERS",
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adam",
    "ArchitectureError",
    "Augment",
    "AvgPool",
    "BatchNorm",
    "BatchProgress",
    "BinaryCrossEntropy",
    "CategoricalCrossEntropy",
    "ConstantLR",
    "Convolutional",
    "CosineLR",
    "Dense",
    "Dropout",
    "FitOptions",
    "Flatten",
    "GlobalAvgPool",
    "Layer",
    "Loss",
    "MaxPool",
    "MeanSquaredError",
    "ModelFileError",
    "OneCycleLR",
    "Optimizer",
    "ReLU",
    "Reshape",
    "Schedule",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "StepDecayLR",
    "Tanh",
    "TrainingDivergedError",
    "TrainingState",
    "build",
    "layer_from_config",
    "load",
    "make_augment",
    "make_schedule",
    "one_hot",
    "save",
]
