"""Prompt templates: `{name}` placeholders and `__list__` wildcards inside a text value.

Owns the template syntax and its rendering, nothing else; which values are templates and
what fills them is decided by `app.domain.template_plan`. Pure: wildcard lists arrive as data.

Syntax, chosen to leave ordinary prompts alone:
- `{name}` (letters, digits, `_`, `-`; at most 64) is filled by the template variable `name`.
- `__name__` (a wildcard list's name) is filled by the variable `name`, which, unless an axis
  of that name is given, is an implicit axis over the team's list `name`.
- `{{` and `}}` are a literal `{` and `}`.
- Any other brace is literal, so `{red|blue}` (the dynamic-prompts choice syntax) and JSON
  pass through as typed.

A resolved template is stored in canonical form (`{name}` placeholders, literal braces
doubled, no `__name__`), so rendering reads only braces and a stored plan replays exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.domain.contracts import JsonValue
from app.domain.values import format_value

_NAME = r"[A-Za-z0-9_-]{1,64}"
# A wildcard's name starts with a letter or digit so `___` and `__init__`-like runs of
# underscores do not read as an empty name; non-greedy so `__a__ and __b__` is two lists.
_WILDCARD_NAME = r"[a-z0-9][a-z0-9_-]{0,63}?"
_TOKEN = re.compile(
    rf"\{{\{{|\}}\}}|\{{(?P<placeholder>{_NAME})\}}|__(?P<wildcard>{_WILDCARD_NAME})__"
)
_CANONICAL_TOKEN = re.compile(rf"\{{\{{|\}}\}}|\{{(?P<placeholder>{_NAME})\}}")
WHOLE_WILDCARD = re.compile(rf"\s*__(?P<name>{_WILDCARD_NAME})__\s*")


@dataclass(frozen=True, slots=True)
class Slot:
    """A place in a template filled by the variable `name`."""

    name: str
    wildcard: bool  # written `__name__` rather than `{name}`


Part = str | Slot


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[Part, ...]

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(part for part in self.parts if isinstance(part, Slot))

    def canonical(self) -> str:
        """The text that `parse_canonical` reads back to the same template."""
        return "".join(
            f"{{{part.name}}}"
            if isinstance(part, Slot)
            else part.replace("{", "{{").replace("}", "}}")
            for part in self.parts
        )

    def literal(self) -> str:
        """The text with escapes undone; meaningful only for a template without slots."""
        return "".join(part for part in self.parts if isinstance(part, str))


def parse_template(text: str) -> Template:
    """A value as a user typed it: placeholders, wildcards and escapes."""
    return _parse(text, _TOKEN)


def parse_canonical(text: str) -> Template:
    """A value as resolution stored it: placeholders and escapes only."""
    return _parse(text, _CANONICAL_TOKEN)


def whole_wildcard(text: str) -> str | None:
    """The list name when the whole value is one wildcard (`"__animals__"`), else None."""
    match = WHOLE_WILDCARD.fullmatch(text)
    return None if match is None else match["name"]


def render(template: Template, values: Mapping[str, JsonValue]) -> str:
    """The template filled in; a number or switch reads as it labels a grid (`7.5`, `true`)."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            value = values[part.name]
            out.append(value if isinstance(value, str) else format_value(value))
    return "".join(out)


def _parse(text: str, token: re.Pattern[str]) -> Template:
    parts: list[Part] = []
    literal: list[str] = []
    position = 0
    for match in token.finditer(text):
        literal.append(text[position : match.start()])
        position = match.end()
        name = match["placeholder"] or match.groupdict().get("wildcard")
        if name is None:  # `{{` or `}}`
            literal.append(match.group()[0])
            continue
        if literal_text := "".join(literal):
            parts.append(literal_text)
        literal = []
        parts.append(Slot(name, wildcard=match["placeholder"] is None))
    literal.append(text[position:])
    if literal_text := "".join(literal):
        parts.append(literal_text)
    return Template(tuple(parts))
