"""The one shape in which the domain rejects input: a list of problems, each naming where and why.

`loc` follows FastAPI's validation errors (`["body", "axes", 1, "values"]` without the
"body" prefix, which the API adds), so clients parse payload and sweep errors alike. `type`
reuses ComfyUI's validation names where they overlap (`value_bigger_than_max`,
`value_not_in_list`) so one vocabulary covers both layers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    type: str
    msg: str
    input: object = None


class SweepRejected(Exception):
    """Raised by the core when a request cannot become a sweep; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("SweepRejected needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in self.problems))


def reject(loc: Loc, type_: str, msg: str, input_: object = None) -> SweepRejected:
    """Build a single-problem rejection, for `raise reject(...)`."""
    return SweepRejected([Problem(loc, type_, msg, input_)])


def and_more(count: int, one: str, many: str) -> str:
    """The tail of a problem reported once for `count` more values breaking the same rule:
    a range of 100 values past a maximum is one problem, not 69."""
    if count <= 0:
        return ""
    return f" (and {count} more {one if count == 1 else many})"


def close_options(value: object, options: Iterable[object]) -> list[str]:
    """Up to three of the string `options` spelt most like `value`, closest first: the
    "did you mean" of a misspelt sampler or checkpoint name."""
    if not isinstance(value, str):
        return []
    names = [option for option in options if isinstance(option, str)]
    return difflib.get_close_matches(value, names, n=3, cutoff=0.6)
