"""Errors every layer raises; the CLI maps them to exit codes (2 bad input, 1 failed operation)."""


class WardenError(Exception):
    """Base class: a failure the user can read and act on, never shown with a traceback."""

    exit_code = 1


class BadInput(WardenError):
    """The user asked for something malformed or impossible; fix the command and rerun."""

    exit_code = 2


class OperationFailed(WardenError):
    """The request was well formed but the operation did not succeed (network, chain, funds …)."""

    exit_code = 1
