"""Extending a stored cartesian plan: more values on its axes, a new axis, more seeds.

Given the plan a sweep was expanded from and what to add, `extend_plan` gives the new plan
and the runs it adds: their own values and their positions in the new expansion order. Every
existing run keeps its assignment and its index; its position in the new order may change
(seeds vary fastest, then X, ...), so a grid of an extended sweep places runs by their
assignment (`CellLocator`), not by their index. Zip, sampled and templated plans are refused:
there the position of a value is not independent of the others. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from app.domain.contracts import Contract, JsonValue, validate_value, validate_values
from app.domain.expansion import Axis, SweepPlan, count_runs, expand_own_values, varied_params
from app.domain.problems import Loc, Problem, SweepRejected, reject
from app.domain.resolution import SEED_PARAM
from app.domain.values import parse_values

# Key of a stored plan record whose runs' indices are no longer their grid positions.
EXTENDED = "extended"


@dataclass(frozen=True)
class AxisExtension:
    param: str
    values: str | Sequence[JsonValue]  # as in a submission: a JSON list or A1111 text


@dataclass(frozen=True)
class ExtensionRequest:
    axes: tuple[AxisExtension, ...] = ()
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class Extension:
    plan: SweepPlan
    # Each new run's own values, in the new plan's expansion order, with its position there.
    added: tuple[Mapping[str, JsonValue], ...]
    positions: tuple[int, ...]


def extend_plan(
    contract: Contract, plan: SweepPlan, request: ExtensionRequest, max_runs: int
) -> Extension:
    """Raises SweepRejected naming each offending field; the new plan stays within
    `max_runs`."""
    _check_extendable(plan, request)
    problems: list[Problem] = []
    extended = plan
    seen: set[str] = set()
    for i, axis in enumerate(request.axes):
        extended = _extend_axis(contract, extended, axis, i, seen, max_runs, problems)
        seen.add(axis.param)
    if request.seeds:
        extended = _extend_seeds(contract, extended, request.seeds, problems)
    if problems:
        raise SweepRejected(problems)
    total = count_runs(extended)
    if total > max_runs:
        msg = f"the extended sweep has {total} runs, above the limit of {max_runs}"
        raise reject(("axes",), "too_many_runs", msg, total)
    return _added(plan, extended)


def next_seeds(plan: SweepPlan, count: int, start: int | None) -> tuple[int, ...]:
    """`count` seeds counting up from `start`, or from just above the plan's highest seed."""
    first = start if start is not None else max(plan.seeds, default=-1) + 1
    return tuple(range(first, first + count))


class CellLocator:
    """A run's position in a cartesian plan's expansion order, from its assignment: what a
    grid places it by once an extension has made positions and indices differ."""

    def __init__(self, plan: SweepPlan) -> None:
        self._axes = [
            (axis.param, {_key(v): n for n, v in enumerate(axis.values)}) for axis in plan.axes
        ]
        self._seed_param = plan.seed_param if plan.seeds else None
        self._seeds = {_key(seed): n for n, seed in enumerate(plan.seeds)}

    def position(self, assignment: Mapping[str, JsonValue]) -> int | None:
        """None when some value of the assignment is not in the plan."""
        position = 0
        for param, places in reversed(self._axes):
            place = places.get(_key(assignment.get(param)))
            if place is None:
                return None
            position = position * len(places) + place
        if self._seed_param is None:
            return position
        seed = self._seeds.get(_key(assignment.get(self._seed_param)))
        return None if seed is None else position * len(self._seeds) + seed


def _check_extendable(plan: SweepPlan, request: ExtensionRequest) -> None:
    if plan.mode != "cartesian":
        msg = "a zip sweep pairs values by position; adding values would pair them anew"
        raise reject(("mode",), "not_extendable", msg, plan.mode)
    if plan.samples:
        msg = "a sampled sweep's points are drawn together; submit a new sweep instead"
        raise reject(("sampling",), "not_extendable", msg)
    if plan.templates:
        msg = "a sweep with prompt templates cannot be extended; submit a new sweep instead"
        raise reject(("axes",), "not_extendable", msg, list(plan.templates))
    if not request.axes and not request.seeds:
        raise reject((), "empty_extension", "give `axes` or `seeds` to add")


def _extend_axis(
    contract: Contract,
    plan: SweepPlan,
    axis: AxisExtension,
    i: int,
    seen: set[str],
    max_runs: int,
    problems: list[Problem],
) -> SweepPlan:
    param_loc: Loc = ("axes", i, "param")
    loc: Loc = ("axes", i, "values")
    problem = _axis_problem(contract, plan, axis.param, param_loc, seen)
    if problem is not None:
        problems.append(problem)
        return plan
    parameter = contract.parameters[axis.param]
    try:
        values = parse_values(axis.values, parameter, loc, max_runs)
    except SweepRejected as rejected:
        problems.extend(rejected.problems)
        return plan
    per_item = not isinstance(axis.values, str)
    found = validate_values(parameter, values, lambda j: (*loc, j) if per_item else loc)
    existing = next((a for a in plan.axes if a.param == axis.param), None)
    # A new axis starts with the value every existing run has: theirs is one of its cells.
    kept = existing.values if existing is not None else (plan.fixed[axis.param],)
    found += _already_present(kept, values, loc, per_item)
    if found:
        problems.extend(found)
        return plan
    grown = Axis(axis.param, (*kept, *values))
    if existing is not None:
        axes = tuple(grown if a.param == axis.param else a for a in plan.axes)
        return replace(plan, axes=axes)
    # The value stays among the fixed ones too: existing runs stored only what they varied,
    # so theirs comes from there (`full_assignment`); every new run stores its own.
    return replace(plan, axes=(*plan.axes, grown))


def _axis_problem(
    contract: Contract, plan: SweepPlan, name: str, loc: Loc, seen: set[str]
) -> Problem | None:
    if name in seen:
        return Problem(
            loc, "duplicate_axis", f"{name} is already extended by an earlier axis", name
        )
    if name not in contract.parameters:
        known = ", ".join(sorted(contract.parameters))
        msg = f"{name!r} is not a parameter of {contract.workflow}; known: {known}"
        return Problem(loc, "unknown_parameter", msg, name)
    if name == SEED_PARAM and plan.seeds:
        return Problem(
            loc, "parameter_conflict", "the sweep varies seed by `seeds`; add seeds there", name
        )
    on_axis = any(a.param == name for a in plan.axes)
    if not on_axis and name not in plan.fixed:
        msg = f"{name} has no value in this sweep that its existing runs could keep"
        return Problem(loc, "not_extendable", msg, name)
    return None


def _already_present(
    kept: Sequence[JsonValue], values: Sequence[JsonValue], loc: Loc, per_item: bool
) -> list[Problem]:
    present = {_key(value) for value in kept}
    for j, value in enumerate(values):
        if _key(value) in present:
            msg = f"{json.dumps(value)} is already a value of this sweep; its runs exist"
            return [Problem((*loc, j) if per_item else loc, "value_already_present", msg, value)]
    return []


def _extend_seeds(
    contract: Contract, plan: SweepPlan, seeds: tuple[int, ...], problems: list[Problem]
) -> SweepPlan:
    loc: Loc = ("seeds",)
    if not plan.seeds or plan.seed_param is None:
        msg = "the sweep was submitted without `seeds`; its runs have no seed dimension to add to"
        problems.append(Problem(loc, "not_extendable", msg))
        return plan
    parameter = contract.parameters.get(plan.seed_param)
    bad = [validate_value(parameter, s, loc) for s in seeds] if parameter is not None else []
    found = [p for p in bad if p is not None][:1]
    found += _already_present(plan.seeds, seeds, loc, per_item=False)
    if found:
        problems.extend(found)
        return plan
    return replace(plan, seeds=(*plan.seeds, *seeds))


def _added(old: SweepPlan, new: SweepPlan) -> Extension:
    """The runs of `new` that `old` has not, by the values of what `new` varies: an existing
    run's own values lack a parameter that a new axis took from the fixed ones."""
    varied = sorted(varied_params(new))

    def identity(fixed: Mapping[str, JsonValue], own: Mapping[str, JsonValue]) -> tuple[str, ...]:
        return tuple(_key(own[name] if name in own else fixed.get(name)) for name in varied)

    existing = {identity(old.fixed, own) for own in expand_own_values(old)}
    added: list[Mapping[str, JsonValue]] = []
    positions: list[int] = []
    for position, own in enumerate(expand_own_values(new)):
        if identity(new.fixed, own) not in existing:
            added.append(own)
            positions.append(position)
    return Extension(new, tuple(added), tuple(positions))


def _key(value: object) -> str:
    # JSON text tells 1 from 1.0 from true, as the stored plan and runs (JSON) do.
    return json.dumps(value, sort_keys=True)
