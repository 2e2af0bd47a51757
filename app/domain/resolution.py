"""Turns a sweep request, as typed, into the plan expansion runs: every value resolved,
typed by the contract and validated, every problem reported at once with its location.

Randomness is drawn by the caller (seeds, the sampling seed) and passed in, so this stays a
pure function and a stored plan replays exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.domain.contracts import (
    Contract,
    JsonValue,
    Parameter,
    contract_defaults,
    validate_value,
    validate_values,
)
from app.domain.expansion import Axis, Mode, SweepPlan, count_runs
from app.domain.problems import Loc, Problem, SweepRejected
from app.domain.sampling import SamplingSpec, sample_points
from app.domain.template_plan import (
    AxisValues,
    TemplatePlan,
    Wildcards,
    listed_values,
    plan_templates,
)
from app.domain.values import parse_values

SEED_PARAM = "seed"


@dataclass(frozen=True)
class AxisRequest:
    param: str
    values: str | Sequence[JsonValue]


@dataclass(frozen=True)
class SweepRequest:
    base: Mapping[str, JsonValue]
    axes: tuple[AxisRequest, ...]
    mode: Mode
    seeds: tuple[int, ...] = ()
    sampling: SamplingSpec | None = None
    # The team's wildcard lists this request mentions, read by the service at submission.
    wildcards: Wildcards = field(default_factory=dict)


def resolve_plan(contract: Contract, request: SweepRequest, max_runs: int) -> SweepPlan:
    """Raises SweepRejected naming every offending field; returns a plan within `max_runs`."""
    problems: list[Problem] = []
    problems += _check_base(contract, request.base)
    axes, variables = _resolve_axes(contract, request, max_runs, problems)
    templated = _resolve_templates(contract, request, axes, variables, max_runs, problems)
    problems += _check_seeds(contract, request)
    samples = _resolve_sampling(contract, request, max_runs, problems)
    if problems or templated is None:
        raise SweepRejected(problems)
    plan = SweepPlan(
        fixed={**_fixed_values(contract, request), **templated.fixed},
        axes=templated.axes,
        mode=request.mode,
        seed_param=SEED_PARAM if request.seeds else None,
        seeds=request.seeds,
        samples=samples,
        templates=templated.templates,
    )
    _check_run_count(plan, max_runs)
    return plan


def _resolve_templates(
    contract: Contract,
    request: SweepRequest,
    axes: list[AxisValues],
    variables: list[tuple[int, str, str | Sequence[JsonValue]]],
    max_runs: int,
    problems: list[Problem],
) -> TemplatePlan | None:
    try:
        return plan_templates(contract, request.base, axes, variables, request.wildcards, max_runs)
    except SweepRejected as rejected:
        problems.extend(rejected.problems)
        return None


def _fixed_values(contract: Contract, request: SweepRequest) -> dict[str, JsonValue]:
    """Defaults ⊕ base, without what the sweep varies (axes, seeds, sampled ranges)."""
    varied = {a.param for a in request.axes}
    varied |= {SEED_PARAM} if request.seeds else set()
    varied |= {r.param for r in request.sampling.ranges} if request.sampling else set()
    merged = {**contract_defaults(contract), **request.base}
    return {name: value for name, value in merged.items() if name not in varied}


def _check_base(contract: Contract, base: Mapping[str, JsonValue]) -> list[Problem]:
    problems: list[Problem] = []
    for name, value in base.items():
        loc: Loc = ("base", name)
        parameter = contract.parameters.get(name)
        if parameter is None:
            problems.append(_unknown_parameter(contract, loc, name))
        elif (problem := validate_value(parameter, value, loc)) is not None:
            problems.append(problem)
    return problems


def _resolve_axes(
    contract: Contract, request: SweepRequest, max_runs: int, problems: list[Problem]
) -> tuple[list[AxisValues], list[tuple[int, str, str | Sequence[JsonValue]]]]:
    """The axes on contract parameters, resolved, and the others, which may be template
    variables: whether they are depends on the templates, resolved next."""
    axes: list[AxisValues] = []
    variables: list[tuple[int, str, str | Sequence[JsonValue]]] = []
    seen: set[str] = set()
    for i, axis in enumerate(request.axes):
        if axis.param not in contract.parameters and axis.param not in seen:
            seen.add(axis.param)
            variables.append((i, axis.param, axis.values))
            continue
        found = _axis_parameter_problem(contract, request, axis.param, i, seen)
        seen.add(axis.param)
        if found is not None:
            problems.append(found)
            continue
        parameter = contract.parameters[axis.param]
        loc: Loc = ("axes", i, "values")
        try:
            raw, from_list = listed_values(axis.values, request.wildcards, loc)
            values = parse_values(raw, parameter, loc, max_runs)
        except SweepRejected as rejected:
            problems.extend(rejected.problems)
            continue
        problems.extend(_invalid_values(parameter, values, loc, per_item=not isinstance(raw, str)))
        axes.append(AxisValues(i, Axis(axis.param, values), from_list))
    return axes, variables


def _invalid_values(
    parameter: Parameter, values: Sequence[JsonValue], loc: Loc, *, per_item: bool
) -> list[Problem]:
    # A JSON list is pointed at item by item; a typed string is one field, so its problems
    # point at the string and carry the offending resolved value as `input`.
    def loc_of(j: int) -> Loc:
        return (*loc, j) if per_item else loc

    return validate_values(parameter, values, loc_of)


def _axis_parameter_problem(
    contract: Contract, request: SweepRequest, name: str, i: int, seen: set[str]
) -> Problem | None:
    loc: Loc = ("axes", i, "param")
    if name in seen:
        return Problem(loc, "duplicate_axis", f"{name} is already swept by an earlier axis", name)
    if name not in contract.parameters:
        return _unknown_parameter(contract, loc, name)
    if name in request.base:
        msg = f"{name} is set in base and swept on an axis; remove one of them"
        return Problem(loc, "parameter_conflict", msg, name)
    if name == SEED_PARAM and request.seeds:
        msg = "seed is swept on an axis and by `seeds`; remove one of them"
        return Problem(loc, "parameter_conflict", msg, name)
    return None


def _check_seeds(contract: Contract, request: SweepRequest) -> list[Problem]:
    if not request.seeds:
        return []
    parameter = contract.parameters.get(SEED_PARAM)
    if parameter is None:
        msg = f"workflow {contract.workflow} has no `seed` parameter to vary"
        return [Problem(("seeds",), "unknown_parameter", msg, None)]
    if SEED_PARAM in request.base:
        msg = "seed is set in base and varied by `seeds`; remove one of them"
        return [Problem(("seeds",), "parameter_conflict", msg, None)]
    # A run of consecutive seeds lies within bounds when both ends do.
    ends = {request.seeds[0], request.seeds[-1], min(request.seeds), max(request.seeds)}
    found = [validate_value(parameter, seed, ("seeds",)) for seed in sorted(ends)]
    return [p for p in found if p is not None][:1]


def _resolve_sampling(
    contract: Contract, request: SweepRequest, max_runs: int, problems: list[Problem]
) -> tuple[Mapping[str, JsonValue], ...]:
    spec = request.sampling
    if spec is None:
        return ()
    if spec.samples > max_runs:
        # Checked before drawing: the points would be built in memory only to be refused.
        msg = f"{spec.samples} samples is above the limit of {max_runs} runs"
        problems.append(Problem(("sampling", "samples"), "too_many_values", msg, spec.samples))
        return ()
    swept = {a.param for a in request.axes} | set(request.base)
    for r in spec.ranges:
        if r.param in swept:
            msg = f"{r.param} is sampled and also set in base or on an axis; remove one of them"
            problems.append(Problem(("sampling", "ranges", r.param), "parameter_conflict", msg))
    try:
        points = sample_points(spec, contract.parameters, ("sampling",))
    except SweepRejected as rejected:
        problems.extend(rejected.problems)
        return ()
    for r in spec.ranges:
        loc: Loc = ("sampling", "ranges", r.param)
        parameter = contract.parameters[r.param]
        bad = (validate_value(parameter, point[r.param], loc) for point in points)
        if (first := next((p for p in bad if p is not None), None)) is not None:
            problems.append(first)
    return points


def _check_run_count(plan: SweepPlan, max_runs: int) -> None:
    total = count_runs(plan)
    if total > max_runs:
        msg = f"this sweep expands to {total} runs, above the limit of {max_runs}"
        raise SweepRejected([Problem(("axes",), "too_many_runs", msg, total)])


def _unknown_parameter(contract: Contract, loc: Loc, name: str) -> Problem:
    known = ", ".join(sorted(contract.parameters))
    msg = f"{name!r} is not a parameter of {contract.workflow}; known: {known}"
    return Problem(loc, "unknown_parameter", msg, name)
