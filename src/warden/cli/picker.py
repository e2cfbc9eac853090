"""Interactive pickers on the terminal: an arrow-key checkbox list and a yes/no confirmation (questionary).

They draw on stderr, so stdout keeps only the command's result. What they do when the user leaves:

- Ctrl-C (or Ctrl-Q) in a picker or at the confirmation: `Cancelled`, exit 1, nothing is sent;
- Enter with nothing marked: an empty list (the caller says "nothing selected" and exits 0);
- answering no to the confirmation: `Cancelled`, exit 1, nothing is sent.

Keys a picker does not know are ignored and the picker stays: a typo never sends or aborts anything.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from warden.errors import BadInput, WardenError

T = TypeVar("T")

# what each picker says about its keys (the "a" key marks every row; a picker without it does not offer it)
KEYS = "↑/↓ move, space marks, enter sends"
KEYS_WITH_ALL = "↑/↓ move, space marks, a marks all, enter sends"


class Cancelled(WardenError):
    """The user left a picker or declined the confirmation: nothing was done (exit 1)."""


@dataclass(frozen=True)
class Row(Generic[T]):
    """One line of a picker: its value, the columns shown (aligned across rows), and, when it cannot be
    picked, why (shown in place of the checkbox)."""

    value: T
    columns: tuple[str, ...]
    disabled: str | None = None


def require_terminal(flag: str) -> None:
    """Pickers read keys from a terminal: refuse (bad input) when stdin is a pipe or a file."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise BadInput(
            f"{flag} picks from a list on a terminal, and stdin is not one: run it in a terminal, "
            "or name the devices as arguments"
        )


def aligned(rows: Sequence[Sequence[str]], width: int | None = None) -> list[str]:
    """Each row's columns padded to the widest of its column, two spaces apart, cut to `width` if given."""
    widths = [max(len(r[i]) for r in rows) for i in range(max((len(r) for r in rows), default=0))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    return [line if width is None or len(line) <= width else line[: width - 1] + "…" for line in lines]


def pick_many(question: str, rows: Sequence[Row[T]], *, offer_all: bool) -> list[T]:
    """The values of the rows the user marked (in list order); [] when they pressed enter on none."""
    import questionary
    from prompt_toolkit.output import create_output

    room = shutil.get_terminal_size((100, 24)).columns - 6  # the pointer and the checkbox
    titles = aligned([r.columns for r in rows], room)
    choices = [
        questionary.Choice(title, value=i, disabled=row.disabled)
        for i, (title, row) in enumerate(zip(titles, rows, strict=True))
    ]
    prompt = questionary.checkbox(
        question,
        choices=choices,
        instruction=f"({KEYS_WITH_ALL if offer_all else KEYS}; ctrl-c cancels)",
        output=create_output(stdout=sys.stderr),
    )
    if not offer_all:
        bindings: Any = prompt.application.key_bindings
        for key in ("a", "i"):  # select-all and invert would offer every row at once
            bindings.remove(key)
    picked = _ask(prompt)
    return [rows[i].value for i in picked]


def confirm(question: str) -> None:
    """Ask yes/no (default no); anything but yes raises `Cancelled`. Other keys are ignored until y or n."""
    import questionary
    from prompt_toolkit.output import create_output

    prompt = questionary.confirm(question, default=False, output=create_output(stdout=sys.stderr))
    if not _ask(prompt):
        raise Cancelled("not confirmed: nothing was sent")


def _ask(prompt: Any) -> Any:
    try:
        return prompt.unsafe_ask()
    except (KeyboardInterrupt, EOFError):
        raise Cancelled("cancelled: nothing was sent") from None
