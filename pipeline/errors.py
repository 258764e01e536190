"""Errors that the CLI turns into one line on stderr and an exit code, never a traceback."""


class PipelineError(Exception):
    """A failure that is not the user's input (network, disk): exit code 1."""

    exit_code = 1


class UserError(PipelineError):
    """Bad input: a file, a key of params.yaml or an argument. Say what is wrong and how to fix it; exit 2."""

    exit_code = 2
