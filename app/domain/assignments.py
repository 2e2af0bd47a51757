"""A run's full assignment from what is stored: the sweep's fixed values once, on its plan, and
on each run only what it varies (its axis values, sample point and seed). Every reader of a
stored run composes through `full_assignment`, so none can show a run without its fixed
values. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.contracts import JsonValue


def full_assignment(
    fixed: Mapping[str, JsonValue], stored: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """The run's every parameter: `fixed` ∪ `stored`, the stored value winning.

    Idempotent: a row stored before runs were lean already holds every fixed value, and reads
    back exactly as stored, key order included (the CSV export's columns follow it)."""
    if all(name in stored for name in fixed):
        return dict(stored)
    return {**fixed, **stored}


def plan_fixed(plan: Mapping[str, Any]) -> Mapping[str, JsonValue]:
    """The fixed values of a stored plan record (`plan["fixed"]`), empty if it has none."""
    fixed = plan.get("fixed")
    return fixed if isinstance(fixed, Mapping) else {}
