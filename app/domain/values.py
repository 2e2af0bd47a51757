"""Turns what a user typed for one axis into the values it stands for, per docs SWEEP-SYNTAX.md.

Owns AUTOMATIC1111's X/Y/Z value syntax (comma lists, `a-b`, `a-b (+s)`, `a-b [n]`) with the
parameter's declared type deciding how each item reads. It never checks bounds, enums or
multiples: the contract's validator does that on the result, so one set of rules applies to
typed and listed values alike.

Choices the spec leaves open:
- A quoted item is one literal value: `"1-5"` is not a range, and on a numeric parameter it
  is rejected as not a number.
- Booleans read `true` / `false` in any case. `1` / `0` and `yes` / `no` are refused, because a
  grid labelled `1` cannot tell a switch from a count.
- `[n]` on an integer parameter rounds half away from zero (A1111 truncates).
- Stepped ranges are exact in decimal, so no rounding is needed: `0-1 (+0.3)` is 0, 0.3, 0.6,
  0.9 because 0 + 3 × 0.3 is exactly 0.9 in decimal, and floats are made only at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

from app.domain.contracts import JsonValue, Parameter
from app.domain.problems import Loc, SweepRejected, reject

_NUMBER = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(
    rf"(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})"
    rf"(?:\s*\(\s*(?P<step>{_NUMBER})\s*\)|\s*\[\s*(?P<count>\d+)\s*\])?"
)
# Exponents are allowed in single values (`1e-4` for a learning rate) but not in range
# bounds, where `1e-4-1` would be unreadable. Three exponent digits at most, so `1e999999999`
# on an integer parameter cannot make Python build a billion-digit int.
_SINGLE = re.compile(rf"{_NUMBER}(?:[eE][+-]?\d{{1,3}})?")
# One comma-separated item: a double-quoted value (`""` inside is a literal quote) or bare
# text up to the next comma. Bare text always matches, so a stray quote is caught afterwards.
_ITEM = re.compile(r'\s*(?:"(?P<quoted>(?:[^"]|"")*)"\s*|(?P<bare>[^,]*))(?P<sep>,|\Z)')
_QUOTED = re.compile(r'"(?:[^"]|"")*"')  # tells an unclosed quote from text after a closed one
# Enough digits that no count or value typed by a person is rounded on the way.
_PRECISION = 60


@dataclass(frozen=True)
class _Item:
    text: str
    quoted: bool


@dataclass(frozen=True)
class _Progression:
    """`count` values `start + k * numerator / denominator`, kept in decimal until the end.

    A step range has denominator 1; `a-b [n]` has numerator `b - a` and denominator `n - 1`,
    so both ends come out exact even when the spacing does not terminate (`0-1 [4]`).
    """

    text: str
    start: Decimal
    numerator: Decimal
    denominator: int
    count: int


def parse_values(
    raw: str | Sequence[JsonValue], parameter: Parameter, loc: Loc, max_count: int
) -> tuple[JsonValue, ...]:
    """Resolve one axis: a JSON list as given, or A1111 text read by the parameter's type."""
    if isinstance(raw, str):
        return _parse_text(raw, parameter, loc, max_count)
    return _parse_list(raw, parameter, loc, max_count)


def format_value(value: JsonValue) -> str:
    """A short label for a value: `5`, `7.5`, `0.3`, `true`, `euler`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # 12 significant digits hide binary noise (0.1 + 0.2) and drop a whole float's ".0",
        # while keeping every digit a person would type.
        return format(value, ".12g")
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _parse_list(
    raw: Sequence[JsonValue], parameter: Parameter, loc: Loc, max_count: int
) -> tuple[JsonValue, ...]:
    if not raw:
        raise reject(loc, "empty_axis", "the axis has no values; give at least one", list(raw))
    _check_count(len(raw), max_count, loc, list(raw))
    values = tuple(_from_json(value, parameter) for value in raw)
    repeat = _first_repeat(values)
    if repeat is not None:
        raise _duplicate((*loc, repeat), values[repeat], raw[repeat])
    return values


def _from_json(value: JsonValue, parameter: Parameter) -> JsonValue:
    # JSON has one number type; a `number` parameter given `7` means 7.0. Booleans are ints
    # to Python, so they are left alone for the validator to refuse.
    if parameter.type == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _parse_text(raw: str, parameter: Parameter, loc: Loc, max_count: int) -> tuple[JsonValue, ...]:
    if not raw.strip():
        raise reject(loc, "empty_axis", "the axis has no values; give at least one", raw)
    items = _split_items(raw, loc)
    if parameter.type not in ("integer", "number"):
        _check_count(len(items), max_count, loc, raw)
        values = [_literal(item, parameter, loc) for item in items]
        return _unique(values, [item.text for item in items], loc)
    with localcontext() as context:
        context.prec = _PRECISION
        progressions = [_plan_numeric(item, parameter, loc) for item in items]
        _check_count(sum(p.count for p in progressions), max_count, loc, raw)
        integer = parameter.type == "integer"
        values = [v for p in progressions for v in _materialise(p, integer)]
    sources = [p.text for p in progressions for _ in range(p.count)]
    return _unique(values, sources, loc)


def _split_items(raw: str, loc: Loc) -> list[_Item]:
    items: list[_Item] = []
    position = 0
    while True:
        match = _ITEM.match(raw, position)
        if match is None:  # unreachable: the bare alternative matches any text, even none
            raise AssertionError(raw)
        items.append(_item(match, loc))
        if not match["sep"]:
            return items
        position = match.end()


def _item(match: re.Match[str], loc: Loc) -> _Item:
    if match["quoted"] is not None:
        return _Item(match["quoted"].replace('""', '"'), quoted=True)
    text = match["bare"].strip()
    if text.startswith('"'):
        raise _misquoted(match.string[match.start("bare") :].rstrip(), text, loc)
    if not text:
        raise reject(
            loc,
            "invalid_syntax",
            'there is an empty value between commas; remove the extra comma or write "" '
            "for an empty string",
            match.string,
        )
    return _Item(text, quoted=False)


def _misquoted(rest: str, item: str, loc: Loc) -> SweepRejected:
    if _QUOTED.match(rest) is None:
        msg = 'a quote is opened and never closed; add the closing " (write "" for a quote inside)'
        return reject(loc, "invalid_syntax", msg, rest)
    msg = "text follows a closing quote; put the whole value inside the quotes"
    return reject(loc, "invalid_syntax", msg, item)


def _literal(item: _Item, parameter: Parameter, loc: Loc) -> JsonValue:
    if parameter.type != "boolean":
        return item.text
    lowered = item.text.lower()
    if lowered not in ("true", "false"):
        raise reject(
            loc,
            "invalid_input_type",
            f"{item.text!r} is not a boolean; {parameter.name} takes true or false",
            item.text,
        )
    return lowered == "true"


def _plan_numeric(item: _Item, parameter: Parameter, loc: Loc) -> _Progression:
    match = None if item.quoted else _RANGE.fullmatch(item.text)
    if match is None:
        return _plan_single(item, parameter, loc)
    start = _bound(match["start"], item.text, parameter, loc)
    end = _bound(match["end"], item.text, parameter, loc)
    if match["count"] is not None:
        return _plan_count(item.text, start, end, int(match["count"]), parameter, loc)
    return _plan_step(item.text, start, end, match["step"], parameter, loc)


def _plan_single(item: _Item, parameter: Parameter, loc: Loc) -> _Progression:
    if _SINGLE.fullmatch(item.text) is None:
        kind = "integers" if parameter.type == "integer" else "numbers"
        raise reject(
            loc,
            "invalid_input_type",
            f"{item.text!r} is not a number; {parameter.name} takes {kind} such as 5, "
            "ranges such as 1-5, or stepped ranges such as 1-9 (+2)",
            item.text,
        )
    value = _bound(item.text, item.text, parameter, loc)
    return _Progression(item.text, value, Decimal(0), 1, 1)


def _bound(text: str, item_text: str, parameter: Parameter, loc: Loc) -> Decimal:
    value = Decimal(text.replace(" ", ""))
    if parameter.type == "integer" and value != value.to_integral_value():
        raise reject(
            loc,
            "invalid_input_type",
            f"{text.strip()} is not a whole number; {parameter.name} takes integers",
            item_text,
        )
    return value


def _plan_step(
    text: str, start: Decimal, end: Decimal, step_text: str | None, parameter: Parameter, loc: Loc
) -> _Progression:
    step = _step(text, start, end, step_text, parameter, loc)
    count = 1 if start == end else int((abs(end - start) / abs(step)).to_integral(ROUND_FLOOR)) + 1
    return _Progression(text, start, step, 1, count)


def _step(
    text: str, start: Decimal, end: Decimal, step_text: str | None, parameter: Parameter, loc: Loc
) -> Decimal:
    """The signed step: direction from the bounds; a typed sign must agree with them."""
    direction = Decimal(-1) if end < start else Decimal(1)
    if step_text is None:
        return direction
    step = Decimal(step_text.replace(" ", ""))
    if step == 0:
        raise reject(loc, "invalid_range_step", f"{text}: a step of 0 never reaches the end", text)
    if parameter.type == "integer" and step != step.to_integral_value():
        raise reject(
            loc,
            "invalid_range_step",
            f"{text}: step {abs(step)} is not a whole number; {parameter.name} takes integers",
            text,
        )
    signed = step_text.lstrip()[0] in "+-"
    if signed and start != end and (step < 0) != (end < start):
        flipped = f"{'+' if step < 0 else '-'}{abs(step)}"
        raise reject(
            loc,
            "invalid_range_step",
            f"step {step_text.replace(' ', '')} goes away from the end {end}; "
            f"use ({flipped}) or swap the bounds",
            text,
        )
    return direction * abs(step)


def _plan_count(
    text: str, start: Decimal, end: Decimal, count: int, parameter: Parameter, loc: Loc
) -> _Progression:
    if count == 0 or (count == 1 and start != end):
        raise reject(
            loc,
            "invalid_range_step",
            f"{text}: [{count}] cannot include both ends; ask for at least 2 values",
            text,
        )
    span = end - start
    if parameter.type == "integer" and count > abs(span) + 1:
        raise reject(
            loc,
            "duplicate_value",
            f"{text} repeats values once rounded to whole numbers; "
            f"ask for at most {abs(span) + 1} values",
            text,
        )
    return _Progression(text, start, span, max(count - 1, 1), count)


def _materialise(progression: _Progression, integer: bool) -> list[JsonValue]:
    p = progression
    exact = (p.start + p.numerator * k / p.denominator for k in range(p.count))
    if integer:
        return [int(value.to_integral_value(ROUND_HALF_UP)) for value in exact]
    # `+ 0.0` turns a typed `-0` into 0.0 so it labels as "0".
    return [float(value) + 0.0 for value in exact]


def _check_count(count: int, max_count: int, loc: Loc, raw: object) -> None:
    if count > max_count:
        raise reject(
            loc,
            "too_many_values",
            f"the axis has {count} values; a sweep allows at most {max_count}",
            raw,
        )


def _unique(values: list[JsonValue], sources: list[str], loc: Loc) -> tuple[JsonValue, ...]:
    repeat = _first_repeat(values)
    if repeat is not None:
        raise _duplicate(loc, values[repeat], sources[repeat])
    return tuple(values)


def _first_repeat(values: Sequence[JsonValue]) -> int | None:
    seen: set[object] = set()
    for index, value in enumerate(values):
        key = _identity(value)
        if key in seen:
            return index
        seen.add(key)
    return None


def _identity(value: JsonValue) -> object:
    # True == 1 in Python, but they are different values to ComfyUI; 1 == 1.0 is the same.
    if isinstance(value, list | dict):
        return ("json", json.dumps(value, sort_keys=True))
    return (isinstance(value, bool), value)


def _duplicate(loc: Loc, value: JsonValue, source: object) -> SweepRejected:
    return reject(
        loc,
        "duplicate_value",
        f"{format_value(value)} appears twice on this axis; remove the repeat, "
        "each value costs a run",
        source,
    )
