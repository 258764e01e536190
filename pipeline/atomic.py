"""Atomic writes for the pipeline's outputs: cnn.atomic's helpers plus text and JSON writers."""

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cnn.atomic import NO_SPACE, atomic_open, atomic_path

__all__ = ["NO_SPACE", "atomic_open", "atomic_path", "together", "write_json", "write_text"]


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json(target: str | os.PathLike, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def together() -> Iterator[Callable[..., Path]]:
    """Yield `stage(target, suffix="") -> temporary path`; when the block ends cleanly, every staged file is
    renamed over its target, one rename after another with SIGINT and SIGTERM held back until the last, so a
    Ctrl-C leaves all the old files or all the new ones. On an exception no target changes."""
    with contextlib.ExitStack() as writes:
        yield lambda target, suffix="": writes.enter_context(atomic_path(target, suffix))
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            writes.close()  # fsync and rename each, in reverse order of staging
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
