"""Errors that the CLI turns into one line on stderr and an exit code, never a traceback."""

import reprlib
from typing import Any


class PipelineError(Exception):
    """A failure that is not the user's input (network, disk): exit code 1."""

    exit_code = 1


class UserError(PipelineError):
    """Bad input: a file, a key of params.yaml or an argument. Say what is wrong and how to fix it; exit 2."""

    exit_code = 2


_short_repr = reprlib.Repr()
_short_repr.maxlevel, _short_repr.maxlist, _short_repr.maxtuple, _short_repr.maxdict = 2, 4, 4, 4
_short_repr.maxstring = _short_repr.maxother = 40


def shorten(text: str, limit: int = 300) -> str:
    """text on one line, cut to at most `limit` characters (ending in "..." when cut)."""
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a value for an error message, with bounded work and length: a huge
    or deeply shared value (a YAML alias bomb) is cut, never expanded."""
    return shorten(_short_repr.repr(value), limit)


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the file, the reason, and for a full disk that the old output is intact."""
    from cnn.atomic import NO_SPACE

    where = exc.filename or "I/O"
    reason = exc.strerror or str(exc)
    if exc.errno in NO_SPACE:
        return f"{where}: could not be written ({reason}); the previous file is unchanged; free disk space and re-run"
    return f"{where}: {reason}"
