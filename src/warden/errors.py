"""Errors every layer raises; the CLI maps them to exit codes (the one place that knows them).

Exit codes (docs/exit-codes.md): 0 ok, 1 failed or refused, 2 bad input, 3 undecided (a check could not
run), 4 changes pending (reserved for `plan`).
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNDECIDED = 3
EXIT_CHANGES_PENDING = 4


class WardenError(Exception):
    """Base class: a failure the user can read and act on, never shown with a traceback."""

    exit_code = EXIT_FAILED


class BadInput(WardenError):
    """The user asked for something malformed or impossible; fix the command and rerun."""

    exit_code = EXIT_BAD_INPUT


class OperationFailed(WardenError):
    """The request was well formed but the operation did not succeed (network, chain, funds …)."""

    exit_code = EXIT_FAILED


class Undecided(WardenError):
    """A check could not run (a missing input, an unknown contract): neither a yes nor a no."""

    exit_code = EXIT_UNDECIDED
