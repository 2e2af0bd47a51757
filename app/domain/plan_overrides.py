"""Fixed values overridden in a sweep's stored plan: what a replay runs. Pure: no I/O.

The stored record (`app.services.sweeps._plan_record`, read back by
`app.domain.grid_dimensions.sweep_plan_from_record`) holds every value expansion used, the
drawn seeds, the sampled points and the wildcard entries (as axis values), so expanding it
yields the source's runs exactly, in the same order, without drawing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from app.domain.contracts import Contract, JsonValue, validate_value
from app.domain.expansion import SweepPlan
from app.domain.problems import Loc, Problem, SweepRejected
from app.domain.template_plan import is_templated
from app.domain.templates import parse_template


def override_fixed(
    contract: Contract, plan: SweepPlan, overrides: Mapping[str, JsonValue]
) -> SweepPlan:
    """`plan` with these fixed values replaced, each checked as a submission's `base` is.
    Raises SweepRejected naming every override (`["base", name]`) that is unknown, breaks
    its parameter's rule, or is a value the plan varies: a replay keeps every run's own
    values, so only what all runs share may change."""
    varied = _varied(plan)
    fixed = dict(plan.fixed)
    templates = set(plan.templates)
    problems: list[Problem] = []
    for name, value in overrides.items():
        problem = _override_problem(contract, varied, name, value, ("base", name))
        if problem is not None:
            problems.append(problem)
            continue
        fixed[name] = _stored(contract, name, value)
        templates.discard(name)  # a plain value now: nothing to fill in
    if problems:
        raise SweepRejected(problems)
    return replace(plan, fixed=fixed, templates=tuple(sorted(templates)))


def _varied(plan: SweepPlan) -> set[str]:
    names = {axis.param for axis in plan.axes}
    names |= {plan.seed_param} if plan.seeds and plan.seed_param else set()
    names |= {name for point in plan.samples for name in point}
    return names


def _override_problem(
    contract: Contract, varied: set[str], name: str, value: JsonValue, loc: Loc
) -> Problem | None:
    parameter = contract.parameters.get(name)
    if parameter is None:
        known = ", ".join(sorted(contract.parameters))
        msg = f"{name!r} is not a parameter of {contract.workflow}; known: {known}"
        return Problem(loc, "unknown_parameter", msg, name)
    if name in varied:
        msg = (
            f"{name} is varied by the source sweep (an axis, its seeds or its sampling); "
            "a replay may override only the values all its runs share"
        )
        return Problem(loc, "parameter_conflict", msg, value)
    problem = validate_value(parameter, value, loc)
    if problem is not None:
        return problem
    if is_templated(parameter) and isinstance(value, str) and parse_template(value).slots:
        msg = (
            f"{name} has placeholders; a replay keeps the source's templates, so an override "
            "is plain text (submit a new sweep to change a template)"
        )
        return Problem(loc, "template_in_override", msg, value)
    return None


def _stored(contract: Contract, name: str, value: JsonValue) -> JsonValue:
    # Free text is stored as submission stores a value without placeholders: escapes undone.
    if is_templated(contract.parameters[name]) and isinstance(value, str):
        return parse_template(value).literal()
    return value
