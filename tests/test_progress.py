"""The live status line: drawn only on a terminal, and a warning never shares its line."""

import io

from pipeline.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_warning_on_a_terminal_clears_the_live_line_first() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress.update("epoch 3/20: loss 0.1", force=True)
    progress.message("warning: training saturated")
    progress.update("epoch 4/20: loss 0.09", force=True)
    progress.done()
    lines = stream.getvalue().split("\n")
    assert lines[0] == "\r\033[Kepoch 3/20: loss 0.1\r\033[Kwarning: training saturated"
    assert lines[0].rsplit("\r\033[K", 1)[1] == "warning: training saturated"  # alone on the cleared line
    assert lines[1] == "\r\033[Kepoch 4/20: loss 0.09\r\033[K"


def test_off_a_terminal_only_messages_are_written() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.update("epoch 3/20: loss 0.1", force=True)
    progress.message("warning: training saturated")
    progress.done()
    assert stream.getvalue() == "warning: training saturated\n"
