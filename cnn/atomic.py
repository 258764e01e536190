"""Write files whole or not at all: to a temporary file beside the target, fsync, then rename.

The one implementation of atomic writes in the project (cnn.save and every pipeline output use it).
"""

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Errors of a full disk or a file-size limit: the message says the previous file is still there.
NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is fsynced and renamed over `target`, else removed.

    `suffix` keeps an extension that a writer insists on (numpy appends ".npz" when it is missing).
    A process killed at any moment leaves either the old `target` or the new one, never a mix. An OSError
    while writing (disk full, file too large) is re-raised with `target` as its filename, the old file intact.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise OSError(exc.errno, os.strerror(exc.errno), str(target)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing that replaces `target` only when the block ends cleanly."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
