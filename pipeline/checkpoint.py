"""Checkpoints of a training run: what continuing it bit for bit needs, in one file written atomically.

A checkpoint is a .npz (no pickles) with members
    header            uint8 JSON: format, fingerprint, and the run's state besides arrays (epoch, batch, step,
                      the generators' states, the epochs' records, the optimizer's numbers)
    model             uint8: the network as cnn.save writes it (parameters and buffers)
    optimizer/<key>   the optimizer's arrays (Adam's moments, momentum buffers), by state_dict key
    outputs           in a checkpoint within an epoch (batch > 0): the network's outputs of the epoch so far
The fingerprint (`fingerprint`) covers the train params, the training data, the source of every module of cnn/
and pipeline/ the run has loaded (what dvc.yaml lists as the train stage's code deps) and the numerics that decide
the bits: a checkpoint of other params, data, code or machine never resumes; editing a module training does not
load (compare.py, sweep.py) keeps it. A file that is not a readable checkpoint of this format is ignored with one line.
"""

import dataclasses
import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import cnn
import pipeline
from cnn import npz, serialize  # now, not at the first save: the fingerprint covers the modules loaded when it is made
from pipeline import numerics
from pipeline.params import TrainParams

FORMAT = 2  # 2: checkpoints within an epoch (batch, outputs)
CODE_PACKAGES = (Path(cnn.__file__).parent, Path(pipeline.__file__).parent)


@dataclass
class Checkpoint:
    """A run after `epoch` epochs and `batch` batches of the next: its network and `state` (cnn's TrainingState
    fields: epoch, step, optimizer, shuffle_rng, augment_rng, layer_rngs, history, batch, outputs)."""

    net: cnn.Sequential
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])

    @property
    def batch(self) -> int:
        return int(self.state.get("batch", 0))

    @property
    def images(self) -> int:
        """Images of epoch `epoch` + 1 already trained on."""
        outputs = self.state.get("outputs")
        return 0 if outputs is None else len(outputs)


def code_files(packages: tuple[Path, ...] = CODE_PACKAGES) -> list[tuple[str, Path]]:
    """(name, path) of the file of each loaded module (sys.modules) inside the folders `packages`, named by the
    folder's name and the path in it (pipeline/train.py), sorted."""
    loaded = {m.__file__ for m in list(sys.modules.values()) if isinstance(getattr(m, "__file__", None), str)}
    found = []
    for package in packages:
        root = os.path.abspath(package)
        inside = sorted(f for f in map(os.path.abspath, loaded) if f.startswith(root + os.sep))
        found += [(f"{package.name}/{Path(os.path.relpath(f, root)).as_posix()}", Path(f)) for f in inside]
    return found


def fingerprint(params: TrainParams, data_path: str | os.PathLike, packages: tuple[Path, ...] = CODE_PACKAGES) -> str:
    """sha256 over the train params, the sha256 of the training data, the name and bytes of each loaded module's
    file in `packages` (code_files) and pipeline.numerics' fingerprint of the machine (BLAS kernel, library
    versions, dtype)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("format", str(FORMAT).encode())
    add("params", json.dumps(dataclasses.asdict(params), sort_keys=True).encode())
    add("numerics", json.dumps(numerics.fingerprint(params.dtype), sort_keys=True).encode())
    with open(data_path, "rb") as data:
        add("data", hashlib.file_digest(data, "sha256").digest())  # streamed: train.npz can be large
    for name, source in code_files(packages):
        add(name, source.read_bytes())
    return digest.hexdigest()


def save(path: str | os.PathLike, fingerprint: str, net: cnn.Sequential, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a reader (or a run killed now) sees the previous one or this one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers = {k: v for k, v in state.get("optimizer", {}).items() if not isinstance(v, np.ndarray)}
    header = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        **{k: v for k, v in state.items() if k not in ("optimizer", "outputs")},
        "layer_rngs": {str(k): v for k, v in state.get("layer_rngs", {}).items()},
        "optimizer": numbers,
    }
    members = {
        "header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
        "model": np.frombuffer(_model_bytes(net, path.parent), dtype=np.uint8),
    }
    members.update(
        (f"optimizer/{k}", np.ascontiguousarray(v))
        for k, v in state.get("optimizer", {}).items()
        if isinstance(v, np.ndarray)
    )
    if state.get("outputs") is not None:
        members["outputs"] = np.ascontiguousarray(state["outputs"])
    npz.write(path, members)


def load(path: str | os.PathLike, fingerprint: str, say: Callable[[str], None]) -> Checkpoint | None:
    """The checkpoint at `path` if it is one of this run (same fingerprint), else None. A missing file is
    silent; a corrupt or foreign one gets one line through `say` and is left to be overwritten."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as members:
            header = json.loads(bytes(members["header"]))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError(f"format {header.get('format') if isinstance(header, dict) else '?'}, not {FORMAT}")
            if header.get("fingerprint") != fingerprint:
                say(f"train: ignoring checkpoint {path}: written for other params, data or code; starting at epoch 1")
                return None
            arrays = {k.removeprefix("optimizer/"): members[k] for k in members.files if k.startswith("optimizer/")}
            net = _model_from_bytes(bytes(members["model"]), path.parent)
            outputs = members["outputs"] if "outputs" in members.files else None
        state = {k: v for k, v in header.items() if k not in ("format", "fingerprint")}
        state["optimizer"] = {**state["optimizer"], **arrays}
        state["layer_rngs"] = {int(k): v for k, v in state["layer_rngs"].items()}
        state["history"] = tuple(state["history"])
        epochs = {int(state["epoch"]), len(state["history"]), len(state.get("learning_rates", state["history"]))}
        if len(epochs) != 1:
            raise ValueError(f"epoch {state['epoch']} with {len(state['history'])} epoch records")
        int(state["step"])
        state["batch"] = int(state.get("batch", -1))
        if state["batch"] < 0 or (state["batch"] > 0) != (outputs is not None):
            raise ValueError(f"batch {state['batch']} with{'out' if outputs is None else ''} outputs")
        state["outputs"] = outputs
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, cnn.ModelFileError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        say(f"train: ignoring checkpoint {path}: not a readable checkpoint ({reason[:100]}); starting at epoch 1")
        return None
    return Checkpoint(net, state)


def remove(path: str | os.PathLike) -> None:
    Path(path).unlink(missing_ok=True)


def _model_bytes(net: cnn.Sequential, scratch: Path) -> bytes:
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".model-") as folder:
        serialize.save(net, Path(folder) / "model.npz")
        return (Path(folder) / "model.npz").read_bytes()


def _model_from_bytes(data: bytes, scratch: Path) -> cnn.Sequential:
    if not data.startswith(b"PK"):
        raise ValueError("its model is not a .npz")
    with zipfile.ZipFile(io.BytesIO(data)):  # a truncated model fails here, before any file is written
        pass
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".model-") as folder:
        (Path(folder) / "model.npz").write_bytes(data)
        return serialize.load(Path(folder) / "model.npz")
