"""What describes a data source: file names, mirrors, checksums, sizes and transfer limits, and the checks of
data.source, data.mirrors and data.sha256. No transfer code: `check` and the params read this without loading
the downloader (pipeline.download), so editing a retry re-runs only the download stage.
"""

import os
import re
import urllib.parse
from pathlib import Path

from pipeline.errors import UserError, render

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Sizes of the files with these checksums: a larger body is cut off at once.
KNOWN_SIZES = {
    MNIST_SHA256["train-images-idx3-ubyte.gz"]: 9_912_422,
    MNIST_SHA256["train-labels-idx1-ubyte.gz"]: 28_881,
    MNIST_SHA256["t10k-images-idx3-ubyte.gz"]: 1_648_877,
    MNIST_SHA256["t10k-labels-idx1-ubyte.gz"]: 4_542,
}
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
SOURCES = ("sample", "mnist")
SCHEMES = ("http", "https", "file")
DEFAULT_MAX_BYTES = 64 * 2**20
DOWNLOAD_TIMEOUT = 10.0  # seconds to connect, and without a byte before a mirror counts as stalled
DOWNLOAD_MIN_RATE = 20_000.0  # bytes/s: slower than this (plus DEADLINE_SLACK) and the next mirror is tried
DEADLINE_SLACK = 30.0  # seconds every file gets on top of size / min_rate


def sample_checksums(folder: Path = SAMPLE_DIR) -> dict[str, str]:
    """{file name: sha256} from `folder`/SHA256SUMS (the `sha256sum` output format)."""
    sums = folder / "SHA256SUMS"
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{sums}: missing; restore it with `git checkout -- {sums}`") from None
    pairs = [line.split(maxsplit=1) for line in lines if line.strip()]
    return {name.strip().lstrip("*"): digest.lower() for digest, name in pairs}


def normalize_mirror(mirror: str) -> str:
    """A base URL ending in '/': http(s) or file URLs as given, a local folder path as its file:// URL."""
    text = mirror.strip()
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if not scheme or (len(scheme) == 1 and os.name == "nt"):  # a plain path (or a Windows drive letter)
        text = Path(text).expanduser().resolve().as_uri()
        scheme = "file"
    if scheme not in SCHEMES:
        raise UserError(f"data.mirrors: {mirror!r} uses scheme {scheme!r}; allowed: http, https, file or a folder path")
    return text if text.endswith("/") else text + "/"


def check_sha256(sha256: dict[str, str]) -> dict[str, str]:
    checked = {}
    for name, digest in sha256.items():
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise UserError(f"data.sha256: {render(name)} is not a plain file name; use names like {FILES[0]}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise UserError(f"data.sha256: the checksum of {name} must be 64 hex digits, got {render(digest)}")
        checked[name] = digest.lower()
    return checked


def resolve_source(
    source: str, mirrors: list[str] | None = None, sha256: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """(mirror base URLs, {file name: sha256}) for data.source, with data.mirrors / data.sha256 overriding.

    "sample": the file:// URL of data/sample/ and its SHA256SUMS (offline); "mnist": MNIST's mirrors and
    published checksums. Raises UserError for an unknown source, a bad URL scheme, or checksums that do not
    cover the four IDX files.
    """
    if source == "sample":
        default_mirrors, default_sha256 = [SAMPLE_DIR.as_uri() + "/"], sample_checksums()
    elif source == "mnist":
        default_mirrors, default_sha256 = MNIST_MIRRORS, MNIST_SHA256
    else:
        raise UserError(f"data.source: unknown source {source!r}; allowed: {', '.join(SOURCES)}")
    mirrors = default_mirrors if mirrors is None else mirrors
    if not mirrors:
        raise UserError("data.mirrors: empty list; give at least one URL or folder, or null for the defaults")
    sha256 = check_sha256(default_sha256 if sha256 is None else sha256)
    missing = [name for name in FILES if name not in sha256]
    if missing:
        raise UserError(f"data.sha256: no checksum for {', '.join(missing)}; give one for each of {', '.join(FILES)}")
    return [normalize_mirror(m) for m in mirrors], sha256
