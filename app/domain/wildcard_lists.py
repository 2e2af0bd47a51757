"""Reads an uploaded wildcard list: one entry per line, as the dynamic-prompts `.txt` files are.

Blank lines and lines starting with `#` are skipped; each entry is trimmed. Refused with the
line named: a repeated entry (each one costs runs and would label two grid columns alike), an
entry too long for a prompt fragment, NUL, and more than `MAX_ENTRIES` entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Starts and ends with a letter, digit or `-`, and has no `__` inside, so `__name__` in a
# prompt always finds its end: `__a__b__` is the list `a` followed by the text `b__`.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9-])?$"
MAX_ENTRIES = 10_000
MAX_ENTRY_CHARS = 2_000
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class WildcardListError(Exception):
    line: int  # 1-based; 0 for the list as a whole
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


def parse_wildcard_list(text: str, max_entries: int = MAX_ENTRIES) -> tuple[str, ...]:
    """The entries of `text` in order; raises WildcardListError naming the first bad line."""
    entries: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if "\x00" in entry:
            raise WildcardListError(number, "contains a NUL character")
        if len(entry) > MAX_ENTRY_CHARS:
            reason = f"the entry has {len(entry)} characters; at most {MAX_ENTRY_CHARS} are allowed"
            raise WildcardListError(number, reason)
        if entry in seen:
            raise WildcardListError(number, f"{entry!r} repeats line {seen[entry]}")
        if len(entries) == max_entries:
            raise WildcardListError(number, f"the list has more than {max_entries} entries")
        seen[entry] = number
        entries.append(entry)
    if not entries:
        raise WildcardListError(0, "the list has no entries; give one per line")
    return tuple(entries)


def is_list_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None and "__" not in name
