"""Model files: one .npz holding the weights ("<layer index>.<param name>") and, under "__model__", the
architecture, dtype and meta as UTF-8 JSON bytes (a uint8 array, so np.load needs no pickle).

The zip is written by hand with fixed timestamps and a fixed member order, so the same network always
gives the same bytes; it is written to a temporary file in the target folder and moved into place.
"""

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError
from .layers import layer_from_config
from .network import Sequential

FORMAT = "mnist-cnn-dvc/model/1"
_HEADER = "__model__"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def save(net: Sequential, path: str | os.PathLike) -> None:
    """Write `net` to `path` (a .npz file), atomically and with deterministic bytes."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "dtype": str(net.dtype),
        "layers": [layer.config() for layer in net.layers],
        "meta": net.meta,
    }
    try:
        header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    except TypeError as exc:
        raise ValueError(f"net.meta must be JSON-serialisable: {exc}") from None
    members = [(_HEADER, np.frombuffer(header_bytes, dtype=np.uint8))]
    for i, layer in enumerate(net.layers):
        members += [(f"{i}.{name}", value) for name, value in layer.params.items()]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model file is as readable as any other output
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, array in members:
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, _npy_bytes(array))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> Sequential:
    """Rebuild the network saved at `path`. Raises ModelFileError if it is missing or not a valid model."""
    path = Path(path)
    fix = "re-create it with the train stage (or cnn.save)"
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; {fix}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path}: not a model file (a single .npy array, not an .npz); {fix}")
        with npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: not a model file or truncated ({type(exc).__name__}: {exc}); {fix}") from None
    header = _read_header(path, arrays.pop(_HEADER, None), fix)
    layers = []
    for i, config in enumerate(header["layers"]):
        try:
            layers.append(layer_from_config(config))
        except ValueError as exc:
            raise ModelFileError(f"{path}: layers[{i}]: {exc}; {fix}") from None
    try:
        net = Sequential(layers, init=None, dtype=header["dtype"])
    except ValueError as exc:
        raise ModelFileError(f"{path}: bad architecture: {exc}; {fix}") from None
    net.meta = header.get("meta") or {}
    for i, layer in enumerate(net.layers):
        for name, param in layer.params.items():
            key = f"{i}.{name}"
            if key not in arrays:
                raise ModelFileError(f"{path}: weights {key} are missing; {fix}")
            value = arrays.pop(key)
            if value.shape != param.shape or not np.issubdtype(value.dtype, np.floating):
                raise ModelFileError(
                    f"{path}: weights {key} have shape {value.shape} ({value.dtype}), the architecture needs "
                    f"{param.shape} ({param.dtype}); {fix}"
                )
            param[...] = value
    if arrays:
        raise ModelFileError(f"{path}: unexpected arrays {', '.join(sorted(arrays))} not in the architecture; {fix}")
    return net


def _read_header(path: Path, raw: Any, fix: str) -> dict[str, Any]:
    if raw is None:
        raise ModelFileError(f"{path}: an .npz without the {_HEADER!r} architecture entry, not a model; {fix}")
    try:
        header = json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable architecture JSON ({exc}); {fix}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise ModelFileError(f"{path}: unknown model format {found!r} (expected {FORMAT!r}); {fix}")
    if not isinstance(header.get("layers"), list) or not header["layers"]:
        raise ModelFileError(f"{path}: the architecture lists no layers; {fix}")
    return header
