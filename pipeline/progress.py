"""Progress for long work: a live line on a terminal, nothing in logs (stderr not a TTY); and for training,
one line per epoch with its speed and the time left (EpochTimer), on a terminal and in logs alike, and on a
terminal a live line within the epoch (EpochTimer.within)."""

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


def duration(seconds: float) -> str:
    """12.3 s, 4 min 05 s, 2 h 07 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60):02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class EpochTimer:
    """The speed and time-left parts of a run's lines. At an epoch's end: images per second of the epoch, its wall
    time and the run's ETA; within an epoch: images done, images per second, the ETA of the epoch and of the
    run. Times left are the images left at this run's mean speed so far (a resumed run counts its own part)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.images, self.seconds = 0, 0.0  # this run's, over its finished epochs

    def __call__(self, epoch: int, images: int, seconds: float, of: int) -> str:
        """After epoch `epoch` of `of` images, which trained on `images` of them in this run's `seconds` (all of
        them, but for the first epoch of a run resumed within it)."""
        self.images += images
        self.seconds += seconds
        left = (self.epochs - epoch) * of * self.seconds / max(self.images, 1)
        return f"{images / max(seconds, 1e-9):,.0f} images/s  epoch {duration(seconds)}  ETA {duration(left)}"

    def within(self, epoch: int, done: int, of: int, images: int, seconds: float) -> str:
        """Epoch `epoch` has trained on `done` of its `of` images, `images` of them in this run's last `seconds`."""
        rate = (self.images + images) / max(self.seconds + seconds, 1e-9)
        epoch_left = (of - done) / max(rate, 1e-9)
        run_left = epoch_left + (self.epochs - epoch) * of / max(rate, 1e-9)
        return (
            f"epoch {epoch}/{self.epochs}  {done:,}/{of:,} images  {rate:,.0f} images/s  "
            f"epoch ETA {duration(epoch_left)}  run ETA {duration(run_left)}"
        )
