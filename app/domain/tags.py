"""Instance tags and the tags a sweep requires: their spelling, their stored form, and
whether a pool can serve a requirement. Pure: the pool comes in as plain tuples.

A requirement is stored as its tags sorted and joined with `+` (`48gb+sdxl`, `""` for none),
so that "the instance covers the sweep" is a plain `IN` over the subsets of the instance's
tags, the same SQL on SQLite and Postgres (`app.stores.eligibility`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import combinations

# Tags meet `+`-joined strings and `#` fragments of COMFY_INSTANCES, so neither may be in one.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
_TAG = re.compile(TAG_PATTERN)
# An instance's tags have 2**n subsets, each one value of the claim's IN list.
MAX_INSTANCE_TAGS = 8


def bad_tag(tag: str) -> str | None:
    """Why `tag` cannot be a tag, or None if it can."""
    if _TAG.fullmatch(tag) is None:
        return f"tag {tag!r} must be 1-32 letters, digits, '_', '.' or '-', starting alnum"
    return None


def join_tags(tags: Iterable[str]) -> str:
    """The stored form: distinct tags, sorted, joined with `+`."""
    return "+".join(sorted(set(tags)))


def split_tags(joined: str) -> tuple[str, ...]:
    return tuple(filter(None, joined.split("+")))


def tag_subsets(tags: Iterable[str]) -> list[str]:
    """Every requirement an instance with `tags` covers, in stored form (`""` included)."""
    distinct = sorted(set(tags))
    return [
        join_tags(chosen)
        for size in range(len(distinct) + 1)
        for chosen in combinations(distinct, size)
    ]


def covers(instance_tags: Iterable[str], required: Iterable[str]) -> bool:
    return set(required) <= set(instance_tags)


def missing_everywhere(
    required: Iterable[str], pool: Sequence[Iterable[str]]
) -> tuple[str, ...] | None:
    """None if some instance of `pool` has every required tag; else the tags the closest
    instance lacks (all of them when the pool is empty), sorted."""
    needed = set(required)
    if not needed:
        return None
    best: set[str] | None = None
    for tags in pool:
        lacking = needed - set(tags)
        if not lacking:
            return None
        if best is None or len(lacking) < len(best):
            best = lacking
    return tuple(sorted(needed if best is None else best))
