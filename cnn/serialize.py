"""Model files: one .npz holding the weights ("<layer index>.<param name>"), the layers' untrained buffers such
as batch norm's running statistics ("<layer index>.<buffer name>") and, under "__model__", the architecture,
dtype and meta as UTF-8 JSON bytes (a uint8 array, so np.load needs no pickle).

Format 1 has params only; format 2 adds buffers and is written only for a network that has some, so a file of
a network without buffers keeps format 1 and its bytes. Both are read.

Written by cnn.npz in np.savez's format (uncompressed, members in the order above, every zip header field set by
cnn.zipstore, timestamps 1980-01-01), to a temporary file that is then renamed into place: the same network gives
the same bytes on any Python and OS, with the same numpy (it writes the .npy headers).
Read with bounded work: the zip directory and each member's .npy header (declared shape and dtype) are
checked against the architecture and a size cap before any weights are read.
"""

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import npz
from .builder import layer_from_config
from .errors import ModelFileError
from .layers import Layer
from .network import DTYPES, Sequential

FORMAT = "mnist-cnn-dvc/model/1"  # params only
FORMAT_BUFFERS = "mnist-cnn-dvc/model/2"  # params and buffers
FORMATS = (FORMAT, FORMAT_BUFFERS)
_HEADER = "__model__"
MAX_HEADER_BYTES = 1 << 20  # the architecture JSON; a real one is about 1 kB
MAX_WEIGHT_BYTES = 1 << 28  # 256 MiB of weights: 30x the largest network the README trains
_FIX = "re-create it with the train stage (or cnn.save)"


def arrays(layer: Layer) -> dict[str, np.ndarray]:
    """A layer's saved arrays by name: its params, then its buffers."""
    return {**layer.params, **layer.buffers}


def save(net: Sequential, path: str | os.PathLike) -> None:
    """Write `net` to `path` (a .npz file), atomically and with deterministic bytes."""
    has_buffers = any(layer.buffers for layer in net.layers)
    header = {
        "format": FORMAT_BUFFERS if has_buffers else FORMAT,
        "dtype": str(net.dtype),
        "layers": [layer.config() for layer in net.layers],
        "meta": net.meta,
    }
    try:
        header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    except TypeError as exc:
        raise ValueError(f"net.meta must be JSON-serialisable: {exc}") from None
    members = {_HEADER: np.frombuffer(header_bytes, dtype=np.uint8)}
    for i, layer in enumerate(net.layers):
        members.update((f"{i}.{name}", np.ascontiguousarray(value)) for name, value in arrays(layer).items())
    npz.write(path, members)


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """The declared (shape, dtype) of one .npy member, from its first bytes only."""
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    return tuple(shape), dtype


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


class _Reader:
    """One model file being read; `fail(what)` makes the ModelFileError that names it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: {what}; {_FIX}")

    def header(self, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
        info = members.pop(_HEADER, None)
        if info is None:
            raise self.fail(f"an .npz without the {_HEADER!r} architecture entry, not a model")
        if info.file_size > MAX_HEADER_BYTES:
            raise self.fail(f"the architecture entry is {info.file_size} bytes, more than {MAX_HEADER_BYTES}")
        raw = _read_member(zf, info)
        try:
            header = json.loads(raw.tobytes().decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.fail(f"unreadable architecture JSON ({_short(exc)})") from None
        if not isinstance(header, dict) or header.get("format") not in FORMATS:
            found = header.get("format") if isinstance(header, dict) else None
            raise self.fail(f"unknown model format {_short(found)} (expected {' or '.join(map(repr, FORMATS))})")
        if not isinstance(header.get("layers"), list) or not header["layers"]:
            raise self.fail("the architecture lists no layers")
        if header.get("dtype") not in DTYPES:
            raise self.fail(f"dtype {_short(header.get('dtype'))} is not one of {', '.join(DTYPES)}")
        if not isinstance(header.get("meta", {}), dict):
            raise self.fail(f"meta must be a mapping, got {_short(header.get('meta'))}")
        return header

    def declared(self, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> dict[str, tuple]:
        """{weights key: (shape, dtype)} from the members' headers, their total size capped."""
        declared, total = {}, 0
        for key, info in members.items():
            shape, dtype = _npy_header(zf, info)
            if dtype.kind != "f":
                raise self.fail(f"weights {key} are {dtype}, not floating point")
            total += int(np.prod(shape, dtype=object)) * dtype.itemsize
            if total > MAX_WEIGHT_BYTES:
                raise self.fail(f"the weights declare more than {MAX_WEIGHT_BYTES >> 20} MiB ({key}: {shape})")
            declared[key] = (shape, dtype)
        return declared

    def network(self, header: dict[str, Any]) -> Sequential:
        layers = []
        for i, config in enumerate(header["layers"]):
            try:
                layers.append(layer_from_config(config))
            except ValueError as exc:
                raise self.fail(f"layers[{i}]: {_short(exc, 200)}") from None
        try:
            net = Sequential(layers, init=None, dtype=header["dtype"])
        except ValueError as exc:
            raise self.fail(f"bad architecture: {_short(exc, 200)}") from None
        net.meta = header.get("meta") or {}
        return net

    def check_meta(self, net: Sequential) -> None:
        if "classes" not in net.meta:
            return
        classes, outputs = net.meta["classes"], int(np.prod(net.output_shape))
        if not (
            isinstance(classes, list)
            and all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
            and len(set(classes)) == len(classes)
        ):
            raise self.fail(f"meta.classes must be a list of distinct integers, got {_short(classes)}")
        if len(classes) != outputs:
            raise self.fail(f"meta.classes lists {len(classes)} classes but the network has {outputs} outputs")


def _short(value: Any, limit: int = 80) -> str:
    """A one-line rendering of `value` (an exception's message, else its repr), cut to `limit` characters."""
    if isinstance(value, Exception):
        text = str(value).splitlines()[0] if str(value) else type(value).__name__
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load(path: str | os.PathLike) -> Sequential:
    """Rebuild the network saved at `path`. Raises ModelFileError if it is missing or not a valid model.

    Bounded work: at most MAX_HEADER_BYTES of JSON and MAX_WEIGHT_BYTES of weights are read, and only after
    every member's declared shape and dtype fit the architecture.
    """
    path = Path(path)
    reader = _Reader(path)
    if not path.is_file():
        raise reader.fail("no such model file" if not path.exists() else "a folder, not a model file")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise reader.fail(f"unexpected member {info.filename!r} in the .npz")
                members[info.filename.removesuffix(".npy")] = info
            header = reader.header(zf, members)
            declared = reader.declared(zf, members)
            net = reader.network(header)
            reader.check_meta(net)
            for i, layer in enumerate(net.layers):
                for name, param in arrays(layer).items():
                    key = f"{i}.{name}"
                    if key not in declared:
                        raise reader.fail(f"weights {key} are missing")
                    shape, dtype = declared.pop(key)
                    if shape != param.shape:
                        raise reader.fail(
                            f"weights {key} have shape {shape} ({dtype}), the architecture needs "
                            f"{param.shape} ({param.dtype})"
                        )
            if declared:
                raise reader.fail(f"unexpected arrays {', '.join(sorted(declared))[:80]} not in the architecture")
            for i, layer in enumerate(net.layers):
                for name, param in arrays(layer).items():
                    param[...] = _read_member(zf, members[f"{i}.{name}"])
    except ModelFileError:
        raise
    except zipfile.BadZipFile:
        with open(path, "rb") as handle:
            single_npy = handle.read(6) == b"\x93NUMPY"
        what = "not a model file (a single .npy array, not an .npz)" if single_npy else "not a model file or truncated"
        raise reader.fail(what) from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.LargeZipFile) as exc:
        raise reader.fail(f"not a model file or truncated ({type(exc).__name__}: {_short(exc)})") from None
    return net
