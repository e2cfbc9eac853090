"""Errors every layer raises, and the one place that knows what each means to a shell and to HTTP.

Exit codes (docs/exit-codes.md): 0 ok, 1 failed or refused, 2 bad input, 3 undecided (a check could not
run), 4 changes pending (`warden plan`).

HTTP statuses (`http_status`, answered by the control plane's API, the KMS and the devnet guest agent;
each keeps its own body shape):

| error | status | why |
|---|---|---|
| `BadInput` | 400 | the request is malformed or impossible: the caller fixes it |
| `NotFound` | 404 | the node, app, CVM or method is unknown, or not visible to the caller |
| `Conflict` | 409 | the name is taken by something the caller may not see or change |
| `Denied` | 403 | well formed, and the policy (the chain, the KMS) said no: retrying will not help |
| `OperationFailed` | 503 | a backend the server depends on (chain, RPC, KMS) did not let it finish; retry later |
| `Undecided` | 503 | a check could not run, so there is neither a yes nor a no |
| `WardenError` | 500 | a failure nothing more specific describes |
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNDECIDED = 3
EXIT_CHANGES_PENDING = 4


class WardenError(Exception):
    """Base class: a failure the user can read and act on, never shown with a traceback."""

    exit_code, http_status = EXIT_FAILED, 500


class BadInput(WardenError):
    """The user asked for something malformed or impossible; fix the command and rerun."""

    exit_code, http_status = EXIT_BAD_INPUT, 400


class NotFound(BadInput):
    """Unknown here, or not visible to the caller (a service answers both the same way)."""

    http_status = 404


class Conflict(BadInput):
    """The name is taken, by something the caller may not change."""

    http_status = 409


class OperationFailed(WardenError):
    """The request was well formed but the operation did not succeed (network, chain, funds …)."""

    exit_code, http_status = EXIT_FAILED, 503


class Denied(OperationFailed):
    """The policy said no (the chain's allowlist, the KMS): `str()` is the reason the caller sees."""

    http_status = 403


class Undecided(WardenError):
    """A check could not run (a missing input, an unknown contract): neither a yes nor a no."""

    exit_code, http_status = EXIT_UNDECIDED, 503
