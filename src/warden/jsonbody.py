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
from typing import Any

from warden.errors import BadInput

MAX_DEPTH = 64  # a dstack request nests 3 or 4 levels; 64 leaves room and is far below any stack limit
PYTHON_RECURSION_LIMIT = 1000  # CPython's default

_SPECIAL = re.compile(rb'["\\\[\]{}]')


class JsonRefused(BadInput):
    """A body that is not JSON this service will parse (invalid, too deeply nested, a number too long)."""


def nests_deeper_than(body: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest deeper than `max_depth` (brackets inside strings do not
    count). Linear, with no recursion; it stops at the first level too deep."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False  # not even that many brackets: no need to look closer
    depth = 0
    in_string = False
    skip = -1  # the position of a character escaped by a backslash
    for match in _SPECIAL.finditer(body):
        position = match.start()
        if position == skip:
            continue
        char = body[position]
        if in_string:
            if char == 0x5C:  # backslash: the next character is escaped
                skip = position + 1
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > max_depth:
                return True
        elif char in (0x5D, 0x7D):
            depth -= 1
    return False


def check_nesting(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """JsonRefused when arrays and objects in `body` nest deeper than `max_depth`."""
    if nests_deeper_than(body, max_depth):
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")


def loads(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (JsonRefused) too deep nesting, invalid JSON and numbers too long to convert."""
    raw = body.encode() if isinstance(body, str) else body
    check_nesting(raw, max_depth)
    try:
        return json.loads(raw)
    except RecursionError:  # cannot happen below max_depth; kept so no input ever escapes as a 500
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # also a number over the interpreter's int digit limit
        raise JsonRefused(f"not JSON: {exc}") from None


def cap_recursion_limit(limit: int = PYTHON_RECURSION_LIMIT) -> None:
    """Undo a library's raised recursion limit (py_ecc sets 100,000 on import): with it, deep recursion
    overflows the C stack and kills the process instead of raising RecursionError."""
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
