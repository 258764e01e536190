"""Progress for long work: a live line on a terminal, nothing in logs (stderr not a TTY)."""

import sys
import time
from typing import TextIO

CLEAR_LINE = "\r\033[K"  # back to the start of the line, erase it


class Progress:
    """Rewrites one status line on stderr when it is a terminal, at most every `interval` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.interval = interval
        self._last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and (force or now - self._last >= self.interval):
            self.stream.write(CLEAR_LINE + text)
            self.stream.flush()
            self._last = now

    def message(self, text: str) -> None:
        """`text` on a line of its own (a warning), on a terminal after clearing the live line, which the
        next update redraws below it."""
        self.stream.write((CLEAR_LINE if self.enabled else "") + text + "\n")
        self.stream.flush()

    def done(self, text: str | None = None) -> None:
        if self.enabled:
            self.stream.write(CLEAR_LINE + (text + "\n" if text else ""))
            self.stream.flush()

    def download(self, done: int, total: int | None, name: str) -> None:
        """Callback for pipeline.download.fetch: bytes so far of one file."""
        of = f" / {total / 2**20:.1f} MiB" if total else " MiB"
        self.update(f"{name}: {done / 2**20:.1f}{of}", force=total is not None and done >= total)
