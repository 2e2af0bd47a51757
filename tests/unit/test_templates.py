"""The template syntax: placeholders, wildcards, escapes, and what is left as typed."""

from __future__ import annotations

import pytest

from app.domain.templates import Slot, parse_canonical, parse_template, render, whole_wildcard


def test_placeholders_and_wildcards_become_slots_between_literal_text() -> None:
    template = parse_template("a {animal} in __styles__, 4k")
    assert template.parts == ("a ", Slot("animal", False), " in ", Slot("styles", True), ", 4k")


def test_doubled_braces_are_literal_braces_and_never_placeholders() -> None:
    template = parse_template("{{animal}} and {{ {animal} }}")
    assert template.parts == ("{animal} and { ", Slot("animal", False), " }")
    assert render(template, {"animal": "cat"}) == "{animal} and { cat }"


def test_other_braces_pass_through_as_typed() -> None:
    # The dynamic-prompts choice syntax and JSON are not placeholders.
    for text in ["{red|blue} car", '{"a": 1}', "{}", "{ spaced }", "a } b {"]:
        template = parse_template(text)
        assert template.slots == ()
        assert template.literal() == text


def test_canonical_form_reads_back_to_the_same_rendering() -> None:
    template = parse_template("__animals__ {{x}} {style} {a|b}")
    canonical = template.canonical()
    assert canonical == "{animals} {{x}} {style} {{a|b}}"
    values = {"animals": "cat", "style": "oil"}
    assert render(parse_canonical(canonical), values) == render(template, values)
    assert render(template, values) == "cat {x} oil {a|b}"


def test_canonical_text_does_not_read_double_underscores_as_wildcards() -> None:
    assert parse_canonical("__init__ {{x}}").parts == ("__init__ {x}",)


def test_numbers_and_switches_render_as_grid_labels_do() -> None:
    template = parse_template("{n} steps, {on}, {cfg}")
    assert render(template, {"n": 20, "on": True, "cfg": 7.0}) == "20 steps, true, 7"


@pytest.mark.parametrize(
    ("text", "name"),
    [("__animals__", "animals"), (" __my-list_2__ ", "my-list_2"), ("a __animals__", None)],
)
def test_a_whole_value_wildcard_is_told_from_an_inline_one(text: str, name: str | None) -> None:
    assert whole_wildcard(text) == name


def test_consecutive_wildcards_each_find_their_end() -> None:
    slots = parse_template("__a__ __b-c__ __a__b__").slots
    assert [s.name for s in slots] == ["a", "b-c", "a"]
