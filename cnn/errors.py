"""Errors raised by the cnn package, each with a one-line message: bad architectures and model files are
ValueErrors (bad input); a diverging run is a RuntimeError (the input was valid, training failed)."""


class ArchitectureError(ValueError):
    """A layer list or layer spec that cannot form a network (names the layer and the shapes)."""


class ModelFileError(ValueError):
    """A model file that is missing, not a model, truncated or whose weights do not fit."""


class TrainingDivergedError(RuntimeError):
    """The training loss became nan or inf."""
