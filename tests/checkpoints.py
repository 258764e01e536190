"""What the resume tests share: the training settings whose every piece of state a resumed run must restore, and
a reader of a checkpoint file's header that a half-written or absent file does not break."""

import json
import zipfile
from pathlib import Path

import numpy as np

# Adam's moments, the one-cycle schedule's step, dropout's and augmentation's generators and a validation split,
# at batch 2 (many steps an epoch, so a signal lands within one); each test adds its own layers.
RESUME_TRAIN = {
    "epochs": 4,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 2,
    "validation_fraction": 0.1,
    "schedule": {"type": "onecycle", "max_lr": 0.002},
    "augment": {"shift": 2, "rotate": 10},
}


def checkpoint_header(path: Path) -> dict:
    """The header of the checkpoint at `path` (epoch, batch, ...); {} while it is absent or being written."""
    try:
        with np.load(path) as members:
            return json.loads(bytes(members["header"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return {}
