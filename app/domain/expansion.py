"""Expands a resolved sweep plan into its runs, lazily and in one fixed order.

Owns the run order and each run's coordinates, which grids, ordering and resumption rely on:
seeds vary fastest, then the first axis (X), then the second (Y), then the rest (pages), then
the sample points. Counting is arithmetic, so a plan is sized without building its product.
Template parameters are filled in last, from the run's other values (`app.domain.templates`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import cycle, islice, product
from typing import Literal

from app.domain.contracts import JsonValue
from app.domain.templates import Template, parse_canonical, render

Mode = Literal["cartesian", "zip"]
_Combination = tuple[tuple[int, ...], dict[str, JsonValue]]  # coords, assignment


@dataclass(frozen=True)
class Axis:
    param: str
    values: tuple[JsonValue, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"axis {self.param!r} has no values; parse_values refuses that")


@dataclass(frozen=True)
class SweepPlan:
    fixed: Mapping[str, JsonValue]  # contract defaults ⊕ base, already merged by the caller
    axes: tuple[Axis, ...]  # ordered: first is X, second Y, the rest pages
    mode: Mode = "cartesian"
    seed_param: str | None = None  # name of the parameter seeds go to
    seeds: tuple[int, ...] = ()  # empty = no seed dimension
    samples: tuple[Mapping[str, JsonValue], ...] = ()  # from sampling; empty = none
    # Parameters whose values are canonical templates, filled in from each run's variables.
    templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Contradictions here would silently drop runs or overwrite values, so they are
        # programming errors: resolution reports the user-facing versions as problems first.
        if self.mode not in ("cartesian", "zip"):
            raise ValueError(f"unknown mode {self.mode!r}")
        if self.seeds and self.seed_param is None:
            raise ValueError("seeds need a seed_param to go to")
        params = [axis.param for axis in self.axes]
        if len(set(params)) != len(params):
            raise ValueError(f"a parameter is swept on two axes: {params}")


# Slots because a sweep builds thousands of these: a frozen dataclass sets each field through
# object.__setattr__, and slot descriptors make that about a quarter cheaper.
@dataclass(frozen=True, slots=True)
class RunSpec:
    index: int
    assignment: Mapping[str, JsonValue]
    coords: tuple[int, ...]  # index into each dimension, then the seed index when seeded


def count_runs(plan: SweepPlan) -> int:
    """How many runs `expand_sweep` yields, without building them."""
    sizes = _sizes(plan)
    combinations = math.prod(sizes) if plan.mode == "cartesian" else max(sizes, default=1)
    return combinations * max(len(plan.seeds), 1)


def expand_sweep(plan: SweepPlan) -> Iterator[RunSpec]:
    """Every run of the plan in order; run i has index i and a fresh assignment dict."""
    return _expand(plan, plan.fixed)


def expand_own_values(plan: SweepPlan) -> list[dict[str, JsonValue]]:
    """What each run varies (axis values, sample point, seed), in index order: what a run
    stores; its full assignment is `full_assignment(plan.fixed, that)`. For submission's hot
    path: no copy of `fixed` and no RunSpec per run."""
    if plan.templates:
        # A template's rendering may use fixed values too: expand whole, keep what differs.
        return [_differing(plan.fixed, spec.assignment) for spec in expand_sweep(plan)]
    combinations = (assignment for _, assignment in _combinations(plan, {}))
    if plan.seed_param is None or not plan.seeds:
        return list(combinations)
    param, seeds = plan.seed_param, plan.seeds
    return [{**assignment, param: seed} for assignment in combinations for seed in seeds]


def varied_params(plan: SweepPlan) -> set[str]:
    """Every parameter some run of the plan sets beyond `plan.fixed`: the keys of what
    `expand_own_values` gives each run."""
    varied = {axis.param for axis in plan.axes}
    varied |= {plan.seed_param} if plan.seed_param is not None and plan.seeds else set()
    varied |= set(plan.templates)
    return varied.union(*plan.samples)


def _differing(
    fixed: Mapping[str, JsonValue], assignment: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    return {k: v for k, v in assignment.items() if k not in fixed or fixed[k] != v}


def _expand(plan: SweepPlan, fixed: Mapping[str, JsonValue]) -> Iterator[RunSpec]:
    index = 0
    combinations = _combinations(plan, fixed)
    if plan.templates:
        combinations = _filled(plan.templates, combinations)
    for coords, assignment in combinations:
        if plan.seed_param is None or not plan.seeds:
            yield RunSpec(index, assignment, coords)
            index += 1
            continue
        for seed_index, seed in enumerate(plan.seeds):
            yield RunSpec(index, {**assignment, plan.seed_param: seed}, (*coords, seed_index))
            index += 1


def _sizes(plan: SweepPlan) -> list[int]:
    sizes = [len(axis.values) for axis in plan.axes]
    return [*sizes, len(plan.samples)] if plan.samples else sizes


def _dimensions(plan: SweepPlan) -> list[Sequence[Mapping[str, JsonValue]]]:
    """Per dimension, what each of its positions sets: one parameter for an axis, several
    for a sample point."""
    dimensions: list[Sequence[Mapping[str, JsonValue]]] = [
        [{axis.param: value} for value in axis.values] for axis in plan.axes
    ]
    if plan.samples:
        dimensions.append(plan.samples)
    return dimensions


def _combinations(plan: SweepPlan, fixed: Mapping[str, JsonValue]) -> Iterator[_Combination]:
    dimensions = _dimensions(plan)
    if plan.mode == "zip":
        return _zipped(fixed, dimensions)
    return _crossed(fixed, dimensions)


def _zipped(
    fixed: Mapping[str, JsonValue], dimensions: list[Sequence[Mapping[str, JsonValue]]]
) -> Iterator[_Combination]:
    if not dimensions:
        yield (), dict(fixed)
        return
    length = max(len(dimension) for dimension in dimensions)
    # Shorter dimensions cycle, so every position of the longest one is reached once.
    # Cycling iterators rather than `i % size` per run keeps this as fast as the cartesian.
    positions = zip(*(islice(cycle(range(len(d))), length) for d in dimensions), strict=True)
    parts = zip(*(islice(cycle(dimension), length) for dimension in dimensions), strict=True)
    for coords, values in zip(positions, parts, strict=True):
        assignment = dict(fixed)
        for part in values:
            assignment.update(part)
        yield coords, assignment


def _crossed(
    fixed: Mapping[str, JsonValue], dimensions: list[Sequence[Mapping[str, JsonValue]]]
) -> Iterator[_Combination]:
    if not dimensions:
        yield (), dict(fixed)
        return
    first, rest = dimensions[0], dimensions[1:]
    # The slower dimensions are merged once per row rather than once per run: with X
    # fastest, a row is every X value under one setting of the others. product() varies
    # its last argument fastest, so the rest go in reversed.
    for reversed_coords in product(*(range(len(dimension)) for dimension in reversed(rest))):
        outer = reversed_coords[::-1]
        row = dict(fixed)
        for dimension, position in zip(rest, outer, strict=True):
            row.update(dimension[position])
        for x, values in enumerate(first):
            yield (x, *outer), {**row, **values}


def _filled(names: tuple[str, ...], combinations: Iterator[_Combination]) -> Iterator[_Combination]:
    """Each template parameter's value replaced by its rendering; the variables stay in the
    assignment, so a run records both the words put in and the text they made."""
    parsed: dict[str, Template] = {}  # few distinct templates among many runs
    for coords, assignment in combinations:
        for name in names:
            text = assignment.get(name)
            if isinstance(text, str):
                template = parsed.get(text) or parsed.setdefault(text, parse_canonical(text))
                assignment[name] = render(template, assignment)
        yield coords, assignment
