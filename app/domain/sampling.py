"""Draws sample points over numeric parameter ranges, for sweeps that explore rather than grid.

Owns the strategies (scrambled Sobol, Latin hypercube, plain random) and the mapping from the
unit cube to typed values: integers stay integers, a step snaps to `minimum + k * step` and
never passes the maximum. Deterministic for a given seed, so a stored spec replays exactly.
Bounds set by the contract are not checked here; the contract's validator checks the points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

import numpy as np
from scipy.stats import qmc

from app.domain.contracts import JsonValue, Parameter
from app.domain.problems import Loc, Problem, SweepRejected

Strategy = Literal["sobol", "lhs", "random"]


@dataclass(frozen=True)
class SampledRange:
    param: str
    minimum: float
    maximum: float
    step: float | None = None


@dataclass(frozen=True)
class SamplingSpec:
    strategy: Strategy
    samples: int
    seed: int
    ranges: tuple[SampledRange, ...]


@dataclass(frozen=True)
class _Lattice:
    """`count` evenly stepped values from `start`, in decimal so `0.1` steps stay clean."""

    start: Decimal
    step: Decimal
    count: int
    integer: bool

    def value(self, unit: float) -> JsonValue:
        # Each lattice point owns an equal slice of [0, 1), so snapping keeps the spread.
        # Decimal, not float, so a lattice of any length indexes without overflow.
        k = int((Decimal(unit) * self.count).to_integral_value(ROUND_FLOOR))
        exact = self.start + self.step * min(k, self.count - 1)
        return int(exact) if self.integer else float(exact)


@dataclass(frozen=True)
class _Interval:
    minimum: float
    maximum: float

    def value(self, unit: float) -> JsonValue:
        # Rounding in the multiply could land a hair past the maximum; never hand that out.
        return min(self.minimum + unit * (self.maximum - self.minimum), self.maximum)


def sample_points(
    spec: SamplingSpec, parameters: Mapping[str, Parameter], loc: Loc
) -> tuple[dict[str, JsonValue], ...]:
    """`spec.samples` assignments, each setting every sampled parameter; raises SweepRejected."""
    problems = _spec_problems(spec, loc)
    for sampled in spec.ranges:
        problems += _range_problems(sampled, parameters.get(sampled.param), loc)
    if problems:
        raise SweepRejected(problems)
    scales = [_scale(r, parameters[r.param]) for r in spec.ranges]
    names = [r.param for r in spec.ranges]
    units = _unit_points(spec.strategy, spec.samples, len(scales), spec.seed)
    return tuple(
        {name: scale.value(u) for name, scale, u in zip(names, scales, row, strict=True)}
        for row in units
    )


def _spec_problems(spec: SamplingSpec, loc: Loc) -> list[Problem]:
    problems: list[Problem] = []
    if spec.samples < 1:
        msg = f"samples is {spec.samples}; ask for at least 1"
        problems.append(Problem((*loc, "samples"), "value_smaller_than_min", msg, spec.samples))
    if spec.seed < 0:
        msg = f"seed is {spec.seed}; use a seed of 0 or more"
        problems.append(Problem((*loc, "seed"), "value_smaller_than_min", msg, spec.seed))
    if not spec.ranges:
        msg = "sampling needs at least one parameter range"
        problems.append(Problem((*loc, "ranges"), "empty_axis", msg, []))
    names = [r.param for r in spec.ranges]
    for name in sorted({n for n in names if names.count(n) > 1}):
        msg = f"{name} has more than one range; give each parameter one"
        problems.append(Problem((*loc, "ranges", name), "duplicate_parameter", msg, name))
    return problems


def _range_problems(sampled: SampledRange, parameter: Parameter | None, loc: Loc) -> list[Problem]:
    here: Loc = (*loc, "ranges", sampled.param)
    if parameter is None:
        msg = f"{sampled.param!r} is not a parameter of this workflow"
        return [Problem(here, "unknown_parameter", msg, sampled.param)]
    if parameter.type not in ("integer", "number"):
        msg = f"{sampled.param} is a {parameter.type}; only numeric parameters can be sampled"
        return [Problem(here, "invalid_input_type", msg, sampled.param)]
    problems = _bound_problems(sampled, parameter, here)
    if sampled.step is not None:
        problems += _step_problems(sampled.step, parameter, (*here, "step"))
    return problems


def _bound_problems(sampled: SampledRange, parameter: Parameter, here: Loc) -> list[Problem]:
    bounds = {"minimum": sampled.minimum, "maximum": sampled.maximum}
    if not all(math.isfinite(bound) for bound in bounds.values()):
        return [Problem(here, "invalid_range", "minimum and maximum must be finite numbers")]
    if parameter.type == "integer" and (whole := _whole_number_problems(bounds, parameter, here)):
        return whole
    if sampled.minimum > sampled.maximum:
        msg = f"minimum {sampled.minimum} is above maximum {sampled.maximum}; swap them"
        return [Problem(here, "invalid_range", msg, bounds)]
    return []


def _whole_number_problems(
    bounds: Mapping[str, float], parameter: Parameter, here: Loc
) -> list[Problem]:
    return [
        Problem(
            (*here, key),
            "invalid_input_type",
            f"{key} {bound} is not a whole number; {parameter.name} takes integers",
            bound,
        )
        for key, bound in bounds.items()
        if not float(bound).is_integer()
    ]


def _step_problems(step: float, parameter: Parameter, here: Loc) -> list[Problem]:
    if not (math.isfinite(step) and step > 0):
        return [Problem(here, "invalid_range_step", f"step {step} must be above 0", step)]
    if parameter.type == "integer" and not float(step).is_integer():
        msg = f"step {step} is not a whole number; {parameter.name} takes integers"
        return [Problem(here, "invalid_range_step", msg, step)]
    return []


def _scale(sampled: SampledRange, parameter: Parameter) -> _Lattice | _Interval:
    integer = parameter.type == "integer"
    if sampled.step is None and not integer:
        return _Interval(sampled.minimum, sampled.maximum)
    # repr is the shortest text that reads back as the same float: 0.1, not 0.1000000000000000055.
    start = Decimal(repr(sampled.minimum))
    step = Decimal(repr(sampled.step)) if sampled.step is not None else Decimal(1)
    span = Decimal(repr(sampled.maximum)) - start
    count = int((span / step).to_integral_value(ROUND_FLOOR)) + 1
    return _Lattice(start, step, count, integer)


def _unit_points(strategy: Strategy, samples: int, dimensions: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    points: list[list[float]]
    if strategy == "random":
        points = rng.random((samples, dimensions)).tolist()
        return points
    if strategy == "lhs":
        points = qmc.LatinHypercube(dimensions, rng=rng).random(samples).tolist()
        return points
    # Sobol's balance holds for blocks of 2^m points, and `random(n)` warns otherwise. Drawing
    # the enclosing 2^m block and keeping the first n gives the very same points without that
    # warning, and without `warnings.catch_warnings`, which is process-global and not
    # thread-safe in the API's thread pool.
    block = qmc.Sobol(dimensions, rng=rng).random_base2((samples - 1).bit_length())
    points = block[:samples].tolist()
    return points
