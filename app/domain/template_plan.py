"""Decides which values of a sweep are templates, which axes are template variables, and which
wildcard lists become implicit axes; reports every dangling reference with its location.

Rules (README "Prompt templates and wildcards"):
- Only free-text parameters (`string` without an `enum`) hold templates, in `base` and on axes.
- An axis whose `param` is not in the contract is a template variable when some template
  references it; otherwise it is an unknown parameter, as before.
- `__list__` inside a template is the variable `list`; with no axis of that name it becomes an
  axis over the team's list, after the given axes, in order of first mention.
- An axis value that is exactly `__list__` stands for the list's entries. Entries are text,
  never templates.
Pure: the wildcard lists arrive in `wildcards`, read by the service at submission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.domain.contracts import Contract, JsonValue, Parameter, validate_value
from app.domain.expansion import Axis
from app.domain.problems import Loc, Problem, SweepRejected, reject
from app.domain.templates import Template, parse_template, render, whole_wildcard
from app.domain.values import format_value, parse_values

Wildcards = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class AxisValues:
    """One contract axis as resolved, and whether its values came from a wildcard list."""

    index: int
    axis: Axis
    from_list: bool


@dataclass(frozen=True)
class TemplatePlan:
    axes: tuple[Axis, ...]  # every axis in order: given ones, then implicit wildcard axes
    fixed: Mapping[str, JsonValue]  # base values in their stored form
    templates: tuple[str, ...]  # parameters whose values expansion fills in


def is_templated(parameter: Parameter) -> bool:
    return parameter.type == "string" and parameter.enum is None


def referenced_wildcards(texts: Iterable[object]) -> set[str]:
    """Every list name written `__name__` in these values: what the service must read."""
    names: set[str] = set()
    for text in texts:
        if isinstance(text, str):
            listed = whole_wildcard(text)
            names |= {listed} if listed else {s.name for s in parse_template(text).slots}
    return names


def listed_values(
    raw: str | Sequence[JsonValue], wildcards: Wildcards, loc: Loc
) -> tuple[str | Sequence[JsonValue], bool]:
    """An axis's values with a whole-value `__list__` replaced by the list's entries, and
    whether that happened. Raises SweepRejected for a list the team does not have."""
    name = whole_wildcard(raw) if isinstance(raw, str) else None
    if name is None:
        return raw, False
    if name not in wildcards:
        raise reject(loc, "unknown_wildcard", _unknown_wildcard(name), raw)
    return list(wildcards[name]), True


def plan_templates(
    contract: Contract,
    base: Mapping[str, JsonValue],
    axes: Sequence[AxisValues],
    variables: Sequence[tuple[int, str, str | Sequence[JsonValue]]],  # index, name, values
    wildcards: Wildcards,
    max_runs: int,
) -> TemplatePlan:
    """Raises SweepRejected naming every dangling placeholder, wildcard or variable."""
    problems: list[Problem] = []
    parsed_base, parsed_axes, mentions = _parse_all(contract, base, axes)
    placed = {a.axis.param: a.index for a in axes}
    resolved = [(a.index, a.axis) for a in axes]
    for index, name, raw in variables:
        loc: Loc = ("axes", index, "param")
        if name not in mentions:
            problems.append(_unknown_name(contract, loc, name))
            continue
        axis = _variable_axis(name, raw, wildcards, ("axes", index, "values"), max_runs, problems)
        placed[name] = index
        if axis is not None:
            resolved.append((index, axis))
    implicit: list[Axis] = []
    for name, (slot_loc, slot_wildcard) in mentions.items():
        problem = _mention_problem(contract, name, slot_loc, slot_wildcard, placed, wildcards)
        if problem is not None:
            problems.append(problem)
        elif name not in placed:
            implicit.append(Axis(name, wildcards[name]))
    if problems:
        raise SweepRejected(problems)
    longest = {axis.param: _longest(axis.values) for _, axis in resolved}
    longest |= {axis.param: _longest(axis.values) for axis in implicit}
    _check_renderings(contract, parsed_base, axes, parsed_axes, longest)
    templated = {p for p, t in parsed_base.items() if t.slots}
    templated |= {
        a.axis.param for a in axes if any(t and t.slots for t in parsed_axes.get(a.index, ()))
    }
    stored = [_stored_axis(i, axis, parsed_axes.get(i), templated) for i, axis in resolved]
    return TemplatePlan(
        axes=(*(axis for _, axis in sorted(stored, key=lambda s: s[0])), *implicit),
        fixed={name: _stored(t, name in templated) for name, t in parsed_base.items()},
        templates=tuple(sorted(templated)),
    )


_Mentions = dict[str, tuple[Loc, bool]]  # variable → where first mentioned, and if as `__x__`


def _longest(values: Sequence[JsonValue]) -> JsonValue:
    return max(values, key=lambda v: len(v if isinstance(v, str) else format_value(v)))


def _check_renderings(
    contract: Contract,
    parsed_base: Mapping[str, Template],
    axes: Sequence[AxisValues],
    parsed_axes: Mapping[int, list[Template | None]],
    longest: Mapping[str, JsonValue],
) -> None:
    """Each template filled with its variables' longest words must still be a valid value:
    a prompt's `maxLength` holds for the text sent, not only for what was typed."""
    problems: list[Problem] = []
    located: list[tuple[str, Loc, Template]] = [
        (name, ("base", name), t) for name, t in parsed_base.items()
    ]
    for a in axes:
        for j, t in enumerate(parsed_axes.get(a.index, ())):
            if t is not None:
                located.append((a.axis.param, ("axes", a.index, "values", j), t))
    for name, loc, template in located:
        if not template.slots:
            continue
        longest_text = render(template, longest)
        problem = validate_value(contract.parameters[name], longest_text, loc)
        if problem is not None:
            msg = f"filled with its longest words, {problem.msg}"
            problems.append(Problem(loc, problem.type, msg, template.canonical()))
    if problems:
        raise SweepRejected(problems)


def _parse_all(
    contract: Contract, base: Mapping[str, JsonValue], axes: Sequence[AxisValues]
) -> tuple[dict[str, Template], dict[int, list[Template | None]], _Mentions]:
    mentions: _Mentions = {}
    parsed_base: dict[str, Template] = {}
    for name, value in base.items():
        parameter = contract.parameters.get(name)
        if parameter is not None and is_templated(parameter) and isinstance(value, str):
            parsed_base[name] = _noted(parse_template(value), ("base", name), mentions)
    parsed_axes: dict[int, list[Template | None]] = {}
    for a in axes:
        parameter = contract.parameters[a.axis.param]
        if not is_templated(parameter):
            continue
        parsed_axes[a.index] = [
            None
            if not isinstance(value, str)
            else Template((value,))
            if a.from_list
            else _noted(parse_template(value), ("axes", a.index, "values", j), mentions)
            for j, value in enumerate(a.axis.values)
        ]
    return parsed_base, parsed_axes, mentions


def _noted(template: Template, loc: Loc, mentions: _Mentions) -> Template:
    for slot in template.slots:
        mentions.setdefault(slot.name, (loc, slot.wildcard))
    return template


def _variable_axis(
    name: str,
    raw: str | Sequence[JsonValue],
    wildcards: Wildcards,
    loc: Loc,
    max_runs: int,
    problems: list[Problem],
) -> Axis | None:
    # A variable is text to the template, so its values read as a string parameter's would.
    text = Parameter(name=name, type="string", bindings=())
    try:
        values, _ = listed_values(raw, wildcards, loc)
        return Axis(name, parse_values(values, text, loc, max_runs))
    except SweepRejected as rejected:
        problems.extend(rejected.problems)
        return None


def _mention_problem(
    contract: Contract,
    name: str,
    loc: Loc,
    wildcard: bool,
    placed: Mapping[str, int],
    wildcards: Wildcards,
) -> Problem | None:
    written = f"__{name}__" if wildcard else f"{{{name}}}"
    if name in contract.parameters:
        msg = (
            f"{written} names the parameter {name}; placeholders name template variables, "
            "so give the variable another name and an axis of that name"
        )
        return Problem(loc, "invalid_placeholder", msg, written)
    if name in placed:
        return None
    if wildcard:
        return (
            None
            if name in wildcards
            else Problem(loc, "unknown_wildcard", _unknown_wildcard(name), written)
        )
    msg = (
        f'{written} has no axis to fill it; add an axis with "param": "{name}", '
        f"or write {{{{{name}}}}} for the literal text"
    )
    return Problem(loc, "unknown_placeholder", msg, written)


def _stored_axis(
    index: int, axis: Axis, parsed: list[Template | None] | None, templated: set[str]
) -> tuple[int, Axis]:
    if parsed is None:
        return index, axis
    values = tuple(
        value if t is None else _stored(t, axis.param in templated)
        for value, t in zip(axis.values, parsed, strict=True)
    )
    return index, Axis(axis.param, values)


def _stored(template: Template, is_template: bool) -> str:
    # A parameter no value of which has a placeholder is stored as plain text, escapes undone,
    # so expansion leaves it alone; otherwise every value of it is stored in canonical form.
    return template.canonical() if is_template else template.literal()


def _unknown_wildcard(name: str) -> str:
    return f"no wildcard list named {name!r} in this team; upload one with PUT /v1/wildcards/{name}"


def _unknown_name(contract: Contract, loc: Loc, name: str) -> Problem:
    known = ", ".join(sorted(contract.parameters))
    msg = (
        f"{name!r} is not a parameter of {contract.workflow}, nor a template variable "
        f"(no value references {{{name}}}); known: {known}"
    )
    return Problem(loc, "unknown_parameter", msg, name)
