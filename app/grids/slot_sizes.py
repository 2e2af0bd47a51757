"""The size of each run's grid slot, kept in a small file beside a sweep's tiles, so that of
all the worker processes fitting the sweep's tiles (`workers.tiling`) only the first plans
its grid. A plan costs time in proportion to the sweep's cells, and every process that
ingests one of its runs needs it: over a farm's worker processes, planning in each would cost
each run time in proportion to the number of processes.

The file is named by a digest of everything the plan is computed from (`slot_sizes_name`),
so an extended sweep or another image size gets a file of its own, and holds each distinct
slot size once and runs of grid positions sharing one: a 1,000-cell grid of one size is a
few bytes. It is written through a temporary file renamed over it, so a reader finds the
whole of it or nothing; anything unexpected in it reads as no file, and the caller plans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.domain.grid_geometry import Size
from app.media.storage import atomic_file

# Part of every digest: a change to how grids are laid out must not reuse an older file.
_FORMAT = 1


def slot_sizes_name(*plan_inputs: object) -> str:
    """The file name for a plan computed from `plan_inputs` (JSON values: the sweep's plan
    record, request, run count, the first image's size...)."""
    text = json.dumps([_FORMAT, *plan_inputs], sort_keys=True, separators=(",", ":"))
    return f"slots-{hashlib.sha256(text.encode()).hexdigest()[:32]}.json"


def write_slot_sizes(path: Path, sizes: Mapping[int, Size]) -> None:
    """Each grid position's slot size, as runs of consecutive positions sharing one."""
    distinct: dict[Size, int] = {}
    spans: list[list[int]] = []  # [first position, count, size number]
    for position in sorted(sizes):
        number = distinct.setdefault(sizes[position], len(distinct))
        last = spans[-1] if spans else None
        if last is not None and last[0] + last[1] == position and last[2] == number:
            last[1] += 1
        else:
            spans.append([position, 1, number])
    body = {"sizes": [[size.width, size.height] for size in distinct], "spans": spans}
    with atomic_file(path) as file:
        file.write(json.dumps(body, separators=(",", ":")).encode())


def read_slot_sizes(path: Path, positions: int) -> dict[int, Size] | None:
    """The sizes `write_slot_sizes` wrote for a grid of `positions` (its run count); None
    when there is no such file or it is not one."""
    try:
        body = json.loads(path.read_bytes())
        sizes = [Size(_whole(w, 1), _whole(h, 1)) for w, h in body["sizes"]]
        slots: dict[int, Size] = {}
        for first, count, number in body["spans"]:
            last = _whole(first, 0) + _whole(count, 1)
            if last > positions:
                return None
            size = sizes[_whole(number, 0)]
            slots.update(dict.fromkeys(range(first, last), size))
        return slots
    except (OSError, ValueError, TypeError, KeyError, IndexError):
        return None


def _whole(value: Any, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"not a whole number from {least}: {value!r}")
    return value
