"""Extending a sweep's plan: existing runs keep their assignments, only new cells are added,
and every run can still be found on the grid by its assignment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from app.domain.assignments import full_assignment
from app.domain.contracts import Contract, JsonValue
from app.domain.expansion import Axis, SweepPlan, count_runs, expand_sweep
from app.domain.extension import (
    AxisExtension,
    CellLocator,
    Extension,
    ExtensionRequest,
    extend_plan,
    next_seeds,
)
from app.domain.problems import Problem, SweepRejected
from app.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
_DEMO = load_registry(ROOT / "workflows", ROOT / "params").get("demo-noise")
assert _DEMO is not None
DEMO: Contract = _DEMO.contract

FIXED: dict[str, JsonValue] = {"width": 64, "height": 64, "color": 0, "sigma": 1.0}
PLAN = SweepPlan(
    fixed={**FIXED, "strength": 0.5},
    axes=(Axis("blur_radius", (1, 3)),),
    seed_param="seed",
    seeds=(7, 8),
)


def extend(plan: SweepPlan, *axes: AxisExtension, seeds: Sequence[int] = ()) -> Extension:
    return extend_plan(DEMO, plan, ExtensionRequest(tuple(axes), tuple(seeds)), max_runs=1000)


def rejection(plan: SweepPlan, *axes: AxisExtension, seeds: Sequence[int] = ()) -> Problem:
    with pytest.raises(SweepRejected) as rejected:
        extend(plan, *axes, seeds=seeds)
    return rejected.value.problems[0]


def assignments(plan: SweepPlan) -> list[dict[str, JsonValue]]:
    return [dict(spec.assignment) for spec in expand_sweep(plan)]


def added_assignments(extension: Extension) -> list[dict[str, JsonValue]]:
    return [full_assignment(extension.plan.fixed, own) for own in extension.added]


def assert_new_plan_is_old_plus_added(old: SweepPlan, extension: Extension) -> None:
    before, after = assignments(old), assignments(extension.plan)
    added = added_assignments(extension)
    assert len(after) == count_runs(extension.plan) == len(before) + len(added)
    assert sorted(map(repr, after)) == sorted(map(repr, before + added))
    # Each added run sits where the new expansion puts it.
    for position, assignment in zip(extension.positions, added, strict=True):
        assert after[position] == assignment


def test_values_added_to_an_axis_add_only_their_cells() -> None:
    extension = extend(PLAN, AxisExtension("blur_radius", [9]))
    assert extension.plan.axes == (Axis("blur_radius", (1, 3, 9)),)
    assert [own["blur_radius"] for own in extension.added] == [9, 9]
    assert [own["seed"] for own in extension.added] == [7, 8]
    assert_new_plan_is_old_plus_added(PLAN, extension)


def test_axis_values_take_the_submission_syntax() -> None:
    extension = extend(PLAN, AxisExtension("blur_radius", "5-9 (+2)"))
    assert extension.plan.axes[0].values == (1, 3, 5, 7, 9)
    assert len(extension.added) == 3 * 2


def test_seeds_added_run_under_every_existing_combination() -> None:
    extension = extend(PLAN, seeds=next_seeds(PLAN, 2, None))
    assert extension.plan.seeds == (7, 8, 9, 10)
    assert sorted((own["blur_radius"], own["seed"]) for own in extension.added) == [
        (1, 9),
        (1, 10),
        (3, 9),
        (3, 10),
    ]
    assert_new_plan_is_old_plus_added(PLAN, extension)


def test_next_seeds_count_from_a_given_start() -> None:
    assert next_seeds(PLAN, 3, 100) == (100, 101, 102)


def test_a_new_axis_keeps_the_fixed_value_as_its_first_cell() -> None:
    extension = extend(PLAN, AxisExtension("strength", [0.2, 0.8]))
    assert extension.plan.axes[-1] == Axis("strength", (0.5, 0.2, 0.8))
    # Kept there for the existing runs, which store only what they varied.
    assert extension.plan.fixed["strength"] == 0.5
    assert all("strength" in own for own in extension.added)
    assert {own["strength"] for own in extension.added} == {0.2, 0.8}
    assert len(extension.added) == 2 * 2 * 2
    assert_new_plan_is_old_plus_added(PLAN, extension)


def test_an_axis_and_seeds_at_once() -> None:
    extension = extend(PLAN, AxisExtension("blur_radius", [5]), seeds=[20])
    assert count_runs(extension.plan) == 3 * 3
    assert len(extension.added) == 9 - 4
    assert_new_plan_is_old_plus_added(PLAN, extension)


def test_the_locator_finds_every_run_at_its_new_position() -> None:
    extension = extend(PLAN, AxisExtension("blur_radius", [9]), seeds=[1])
    locator = CellLocator(extension.plan)
    for spec in expand_sweep(extension.plan):
        assert locator.position(spec.assignment) == spec.index
    # An old run, whose own values lack a parameter a new axis took from the fixed ones.
    grown = extend(PLAN, AxisExtension("strength", [0.9]))
    old_run: Mapping[str, JsonValue] = {"blur_radius": 3, "seed": 8}
    position = CellLocator(grown.plan).position(full_assignment(PLAN.fixed, old_run))
    assert position is not None
    assert assignments(grown.plan)[position] == full_assignment(PLAN.fixed, old_run)


def test_the_locator_places_nothing_for_a_value_not_in_the_plan() -> None:
    assert CellLocator(PLAN).position({"blur_radius": 2, "seed": 7}) is None


def test_a_value_already_present_is_named() -> None:
    problem = rejection(PLAN, AxisExtension("blur_radius", [5, 3]))
    assert (problem.loc, problem.type, problem.input) == (
        ("axes", 0, "values", 1),
        "value_already_present",
        3,
    )


def test_a_new_axis_may_not_repeat_the_fixed_value() -> None:
    problem = rejection(PLAN, AxisExtension("strength", [0.5]))
    assert problem.type == "value_already_present"


def test_a_seed_already_present_is_named() -> None:
    problem = rejection(PLAN, seeds=[8, 9])
    assert (problem.loc, problem.type, problem.input) == (("seeds",), "value_already_present", 8)


def test_an_unknown_parameter_is_named() -> None:
    problem = rejection(PLAN, AxisExtension("blur", [2]))
    assert (problem.loc, problem.type, problem.input) == (
        ("axes", 0, "param"),
        "unknown_parameter",
        "blur",
    )


def test_values_out_of_bounds_are_refused_like_a_submission() -> None:
    problem = rejection(PLAN, AxisExtension("blur_radius", [99]))
    assert (problem.loc, problem.type) == (("axes", 0, "values", 0), "value_bigger_than_max")


def test_a_zip_sweep_cannot_be_extended() -> None:
    zipped = SweepPlan(fixed=FIXED, axes=(Axis("blur_radius", (1, 3)),), mode="zip")
    problem = rejection(zipped, AxisExtension("blur_radius", [5]))
    assert (problem.loc, problem.type) == (("mode",), "not_extendable")


def test_a_sampled_sweep_cannot_be_extended() -> None:
    sampled = SweepPlan(fixed=FIXED, axes=(), samples=({"strength": 0.1},))
    assert rejection(sampled, seeds=[1]).type == "not_extendable"


def test_seeds_cannot_be_added_to_a_sweep_without_them() -> None:
    unseeded = SweepPlan(fixed={**FIXED, "seed": 0}, axes=(Axis("blur_radius", (1,)),))
    assert rejection(unseeded, seeds=[1]).loc == ("seeds",)


def test_nothing_to_add_is_refused() -> None:
    assert rejection(PLAN).type == "empty_extension"


def test_the_extended_sweep_stays_within_max_runs() -> None:
    request = ExtensionRequest((AxisExtension("blur_radius", [5, 7, 9]),))
    with pytest.raises(SweepRejected) as rejected:
        extend_plan(DEMO, PLAN, request, max_runs=6)
    assert rejected.value.problems[0].type == "too_many_runs"


def test_extending_does_not_change_the_plan_it_was_given() -> None:
    before = repr(PLAN)
    extend(PLAN, AxisExtension("strength", [0.2]), seeds=[3])
    assert repr(PLAN) == before
