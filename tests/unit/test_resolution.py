"""Resolving a sweep request against its contract: every problem at once, but one per rule
an axis breaks rather than one per offending value."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from app.domain.contracts import JsonValue
from app.domain.problems import Problem, SweepRejected
from app.domain.resolution import AxisRequest, SweepRequest, resolve_plan
from app.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
DEMO = load_registry(ROOT / "workflows", ROOT / "params").get("demo-noise")


def rejection(*axes: AxisRequest) -> Sequence[Problem]:
    assert DEMO is not None
    request = SweepRequest(base={}, axes=axes, mode="cartesian")
    with pytest.raises(SweepRejected) as rejected:
        resolve_plan(DEMO.contract, request, max_runs=10_000)
    return rejected.value.problems


def test_a_typed_range_past_the_maximum_points_at_the_string_with_its_first_value() -> None:
    [problem] = rejection(AxisRequest("blur_radius", "1-100"))
    assert problem.loc == ("axes", 0, "values")
    assert (problem.type, problem.input) == ("value_bigger_than_max", 32)
    assert problem.msg.endswith("(and 68 more values of this axis)")


def test_a_list_points_at_the_first_offending_item_of_each_rule() -> None:
    values: list[JsonValue] = [0.5, 1.5, -0.5, 2.0, 3.0]
    problems = rejection(AxisRequest("strength", values), AxisRequest("blur_radius", [0, 40]))
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("axes", 0, "values", 1), "value_bigger_than_max", 1.5),
        (("axes", 0, "values", 2), "value_smaller_than_min", -0.5),
        (("axes", 1, "values", 0), "value_smaller_than_min", 0),
        (("axes", 1, "values", 1), "value_bigger_than_max", 40),
    ]
    assert problems[0].msg.endswith("(and 2 more values of this axis)")
    assert "more" not in problems[1].msg
