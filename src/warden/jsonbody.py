"""JSON from strangers: nesting is bounded before anything recursive (the decoder, a validator) sees it.

Python's JSON decoder recurses once per nesting level. 100,000 nested brackets fit in a 200 KB body, and
under a raised interpreter recursion limit (py_ecc raises it to 100,000 when imported) they overflow the C
stack and kill the process without a log line. So every service scans a body's nesting in one
non-recursive pass first, and `cap_recursion_limit` puts the interpreter's limit back.
"""

from __future__ import annotations

import json
import re
import sys
from itertools import accumulate
from typing import Any

from warden.errors import BadInput

MAX_DEPTH = 64  # a dstack request nests 3 or 4 levels; 64 leaves room and is far below any stack limit
PYTHON_RECURSION_LIMIT = 1000  # CPython's default

# a JSON string (a backslash escapes one character), or an unterminated one up to the end: every match that
# starts succeeds, so each character is read once (a pattern that can fail after a long scan is quadratic)
_STRING = re.compile(r'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


class JsonRefused(BadInput):
    """A body that is not JSON this service will parse (invalid, too deeply nested, a number too long)."""


def nests_deeper_than(body: bytes | str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest deeper than `max_depth` (brackets inside strings do not
    count). Linear, with no recursion; bytes are read in the encoding `json.loads` would detect."""
    if isinstance(body, bytes):
        if body.count(b"[") + body.count(b"{") <= max_depth:
            return False  # not even that many bracket bytes, in any encoding: no need to look closer
        try:
            # json.loads also takes UTF-16/32: scanning the raw bytes would misread their escapes
            body = body.decode(json.detect_encoding(body), "surrogatepass")
        except UnicodeDecodeError:
            return False  # json.loads refuses it before decoding anything
    if body.count("[") + body.count("{") <= max_depth:
        return False
    # escaped backslashes, then strings, out (an unterminated string's brackets are never opened by the decoder
    # either); then only the brackets, as bytes, and the deepest running count
    structure = _STRING.sub("", body.replace("\\\\", "")).encode("utf-8", "surrogatepass")
    brackets = structure.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth  # C loops, no recursion


def check_nesting(body: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """JsonRefused when arrays and objects in `body` nest deeper than `max_depth`."""
    if nests_deeper_than(body, max_depth):
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")


def loads(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (JsonRefused) too deep nesting, invalid JSON and numbers too long to convert."""
    check_nesting(body, max_depth)
    try:
        return json.loads(body)
    except RecursionError:  # cannot happen below max_depth; kept so no input ever escapes as a 500
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # also a number over the interpreter's int digit limit
        raise JsonRefused(f"not JSON: {exc}") from None


def cap_recursion_limit(limit: int = PYTHON_RECURSION_LIMIT) -> None:
    """Undo a library's raised recursion limit (py_ecc sets 100,000 on import): with it, deep recursion
    overflows the C stack and kills the process instead of raising RecursionError."""
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
