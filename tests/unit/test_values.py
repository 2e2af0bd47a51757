"""Axis values as users type them: every row of docs SWEEP-SYNTAX.md, and every rejection."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import Binding, JsonValue, Parameter
from app.domain.problems import Loc, Problem, SweepRejected
from app.domain.values import format_value, parse_values

LOC: Loc = ("axes", 1, "values")


def integer(name: str = "steps") -> Parameter:
    return Parameter(name, "integer", (Binding("3", name),))


def number(name: str = "cfg") -> Parameter:
    return Parameter(name, "number", (Binding("3", name),))


def string(name: str = "prompt") -> Parameter:
    return Parameter(name, "string", (Binding("6", "text"),))


def enum(name: str = "sampler_name") -> Parameter:
    choices = ("euler", "dpmpp_2m", "a, b")
    return Parameter(name, "string", (Binding("3", name),), enum=choices)


def boolean(name: str = "tiling") -> Parameter:
    return Parameter(name, "boolean", (Binding("9", name),))


def parse(
    raw: str | list[JsonValue], parameter: Parameter, max_count: int = 1000
) -> tuple[JsonValue, ...]:
    return parse_values(raw, parameter, LOC, max_count)


def rejection(raw: str | list[JsonValue], parameter: Parameter, max_count: int = 1000) -> Problem:
    with pytest.raises(SweepRejected) as caught:
        parse(raw, parameter, max_count)
    (problem,) = caught.value.problems
    return problem


# The "Forms" table, row by row.


def test_a_json_list_gives_exactly_its_values() -> None:
    assert parse([1, 5, 9], integer()) == (1, 5, 9)


def test_a_comma_list_trims_items_and_quotes_keep_commas_inside_a_value() -> None:
    assert parse('euler, dpmpp_2m, "a, b"', enum()) == ("euler", "dpmpp_2m", "a, b")


def test_a_range_is_inclusive_with_step_1() -> None:
    assert parse("1-5", integer()) == (1, 2, 3, 4, 5)


def test_a_descending_range_counts_down_by_1() -> None:
    assert parse("10-5", integer()) == (10, 9, 8, 7, 6, 5)


def test_a_range_with_a_step() -> None:
    assert parse("1-9 (+4)", integer()) == (1, 5, 9)


def test_descending_range_includes_the_end_when_the_step_hits_it() -> None:
    assert parse("10-4 (-3)", integer()) == (10, 7, 4)


def test_a_count_range_on_a_float_parameter_spaces_values_evenly_with_both_ends() -> None:
    assert parse("1-3 [5]", number()) == (1.0, 1.5, 2.0, 2.5, 3.0)


def test_a_float_range_with_a_step() -> None:
    assert parse("0.5-2.5 (+0.5)", number()) == (0.5, 1.0, 1.5, 2.0, 2.5)


def test_negative_bounds_on_both_ends() -> None:
    assert parse("-1--5", integer()) == (-1, -2, -3, -4, -5)


def test_a_negative_start_with_a_positive_end() -> None:
    assert parse("-2-2", integer()) == (-2, -1, 0, 1, 2)


def test_items_may_mix_ranges_and_single_values() -> None:
    assert parse("1-3, 7, 10-12", integer()) == (1, 2, 3, 7, 10, 11, 12)


# "Where we differ from AUTOMATIC1111", row by row.


def test_the_end_is_included_whenever_the_step_hits_it_in_either_direction() -> None:
    assert parse("1-10 (+3)", integer()) == (1, 4, 7, 10)
    assert parse("10-1 (-3)", integer()) == (10, 7, 4, 1)


def test_a_float_step_neither_overshoots_the_end_nor_carries_float_noise() -> None:
    values = parse("0-1 (+0.3)", number())
    assert values == (0.0, 0.3, 0.6, 0.9)
    assert [repr(v) for v in values] == ["0.0", "0.3", "0.6", "0.9"]


def test_the_step_sign_is_optional_and_the_bounds_give_the_direction() -> None:
    assert parse("1-9 (4)", integer()) == (1, 5, 9)
    assert parse("9-1 (4)", integer()) == (9, 5, 1)


def test_a_step_sign_that_contradicts_the_bounds_is_rejected_with_a_fix() -> None:
    problem = rejection("1-5 (-1)", integer())
    assert problem == Problem(
        LOC,
        "invalid_range_step",
        "step -1 goes away from the end 5; use (+1) or swap the bounds",
        "1-5 (-1)",
    )


def test_a_descending_range_with_a_positive_sign_is_rejected() -> None:
    problem = rejection("5-1 (+2)", integer())
    assert (problem.type, problem.input) == ("invalid_range_step", "5-1 (+2)")
    assert "use (-2)" in problem.msg


def test_a_zero_step_is_rejected() -> None:
    problem = rejection("1-5 (0)", integer())
    assert (problem.loc, problem.type, problem.input) == (LOC, "invalid_range_step", "1-5 (0)")


def test_a_count_range_that_repeats_after_rounding_to_integers_is_rejected() -> None:
    problem = rejection("1-3 [5]", integer())
    assert (problem.loc, problem.type, problem.input) == (LOC, "duplicate_value", "1-3 [5]")
    assert "at most 3 values" in problem.msg


def test_a_count_range_on_an_integer_parameter_rounds_half_away_from_zero() -> None:
    assert parse("1-10 [4]", integer()) == (1, 4, 7, 10)
    assert parse("1-10 [3]", integer()) == (1, 6, 10)


def test_the_same_text_is_typed_by_the_contract() -> None:
    assert parse("1-3", integer()) == (1, 2, 3)
    assert parse("1-3", number()) == (1.0, 2.0, 3.0)
    assert all(isinstance(v, float) for v in parse("1-3", number()))


def test_a_string_parameter_reads_a_range_as_one_literal_value() -> None:
    # For an enum, the contract's validator then refuses "1-3" as not in the list.
    assert parse("1-3", string()) == ("1-3",)
    assert parse("1-3", enum()) == ("1-3",)


# Errors and limits.


# A billion values: building them would take minutes and gigabytes, so the guard fails the
# test if they are built, however loaded the machine (a wall-clock bound fails under load).
@pytest.mark.timeout(60)
def test_an_axis_longer_than_the_cap_is_refused_without_being_built() -> None:
    problem = rejection("1-1000000000", integer(), max_count=10_000)
    assert (problem.loc, problem.type, problem.input) == (LOC, "too_many_values", "1-1000000000")
    assert "1000000000" in problem.msg


def test_the_cap_counts_every_item_together() -> None:
    assert len(parse("1-5, 6-10", integer(), max_count=10)) == 10
    assert rejection("1-5, 6-11", integer(), max_count=10).type == "too_many_values"


def test_a_tiny_float_step_is_counted_before_it_is_expanded() -> None:
    problem = rejection("0-1 (+0.000000001)", number(), max_count=100)
    assert problem.type == "too_many_values"
    assert "1000000001" in problem.msg


def test_a_huge_count_is_refused_before_it_is_expanded() -> None:
    assert rejection("1-3 [1000000000]", number(), max_count=100).type == "too_many_values"


def test_an_empty_text_is_an_empty_axis() -> None:
    assert rejection("", integer()) == Problem(
        LOC, "empty_axis", "the axis has no values; give at least one", ""
    )
    assert rejection("   ", string()).type == "empty_axis"


def test_an_unclosed_quote_is_a_syntax_error() -> None:
    problem = rejection('euler, "a, b', string())
    assert (problem.loc, problem.type, problem.input) == (LOC, "invalid_syntax", '"a, b')


def test_text_after_a_closing_quote_is_a_syntax_error() -> None:
    assert rejection('"a"b, c', string()).type == "invalid_syntax"


def test_an_empty_item_between_commas_is_a_syntax_error() -> None:
    problem = rejection("1, , 2", integer())
    assert (problem.type, problem.input) == ("invalid_syntax", "1, , 2")
    assert rejection("1, 2,", integer()).type == "invalid_syntax"


def test_a_doubled_quote_inside_quotes_is_a_literal_quote() -> None:
    assert parse('"say ""hi""", "" , x', string()) == ('say "hi"', "", "x")


def test_a_quote_inside_a_bare_value_is_kept() -> None:
    assert parse('5" wide, b', string()) == ('5" wide', "b")


def test_a_word_on_a_numeric_parameter_is_the_wrong_type() -> None:
    problem = rejection("10, twenty", integer())
    assert (problem.loc, problem.type, problem.input) == (LOC, "invalid_input_type", "twenty")
    assert rejection("1-x", number()).type == "invalid_input_type"


def test_a_fraction_on_an_integer_parameter_is_the_wrong_type() -> None:
    problem = rejection("1.5", integer())
    assert (problem.type, problem.input) == ("invalid_input_type", "1.5")
    assert rejection("1.5-3", integer()).input == "1.5-3"


def test_a_fractional_step_on_an_integer_parameter_is_refused() -> None:
    assert rejection("1-5 (+0.5)", integer()).type == "invalid_range_step"


def test_a_whole_number_written_with_a_point_is_an_integer() -> None:
    assert parse("5.0, 6", integer()) == (5, 6)


def test_a_quoted_number_is_one_value_and_a_quoted_range_is_not_expanded() -> None:
    assert parse('"5", 6', integer()) == (5, 6)
    assert rejection('"1-5"', integer()).type == "invalid_input_type"


def test_single_values_may_use_an_exponent() -> None:
    assert parse("1e-4, 2.5E-3", number()) == (0.0001, 0.0025)


def test_a_range_with_equal_bounds_is_one_value_whatever_the_step_sign() -> None:
    assert parse("5-5", integer()) == (5,)
    assert parse("5-5 (-1)", integer()) == (5,)
    assert parse("3-3 [1]", number()) == (3.0,)


def test_a_count_of_zero_or_one_across_two_ends_is_refused() -> None:
    assert rejection("1-3 [0]", number()).type == "invalid_range_step"
    assert rejection("1-3 [1]", number()).type == "invalid_range_step"


def test_a_count_range_keeps_both_ends_exact_when_the_spacing_does_not_terminate() -> None:
    values = parse("0-1 [4]", number())
    assert (values[0], values[-1]) == (0.0, 1.0)
    assert values[1] == pytest.approx(1 / 3)


def test_spaces_are_allowed_around_the_parts_of_a_range() -> None:
    assert parse(" 1 - 9 ( +4 ) ", integer()) == (1, 5, 9)
    assert parse("1-3 [ 3 ]", number()) == (1.0, 2.0, 3.0)


def test_the_same_value_twice_on_one_axis_is_refused() -> None:
    problem = rejection("1-3, 2", integer())
    assert (problem.loc, problem.type, problem.input) == (LOC, "duplicate_value", "2")
    assert rejection("euler, euler", enum()).type == "duplicate_value"


def test_booleans_read_true_and_false_in_any_case() -> None:
    assert parse("True, false", boolean()) == (True, False)


@pytest.mark.parametrize("text", ["yes", "1", "0", "on"])
def test_anything_else_on_a_boolean_is_the_wrong_type(text: str) -> None:
    problem = rejection(f"true, {text}", boolean())
    assert (problem.type, problem.input) == ("invalid_input_type", text)


# JSON lists.


def test_a_json_list_of_ints_for_a_number_parameter_becomes_floats() -> None:
    values = parse([7, 7.5, True], number())
    assert values == (7.0, 7.5, True)
    assert [type(v) for v in values] == [float, float, bool]


def test_a_json_list_is_not_type_checked_or_expanded() -> None:
    assert parse(["1-5", 3], integer()) == ("1-5", 3)


def test_an_empty_json_list_is_an_empty_axis() -> None:
    problem = rejection([], integer())
    assert (problem.loc, problem.type) == (LOC, "empty_axis")


def test_a_json_list_longer_than_the_cap_is_refused() -> None:
    problem = rejection([1, 2, 3], integer(), max_count=2)
    assert (problem.loc, problem.type) == (LOC, "too_many_values")


def test_a_repeat_in_a_json_list_points_at_the_repeated_item() -> None:
    problem = rejection([4, 5, 4.0], number())
    assert (problem.loc, problem.type, problem.input) == ((*LOC, 2), "duplicate_value", 4.0)


def test_true_and_1_are_different_values() -> None:
    assert parse([True, 1], integer()) == (True, 1)


# Labels.


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (5, "5"),
        (5.0, "5"),
        (7.5, "7.5"),
        (0.1 + 0.2, "0.3"),
        (1e-4, "0.0001"),
        (True, "true"),
        (False, "false"),
        ("euler", "euler"),
        (None, "null"),
        ([1, 2], "[1,2]"),
    ],
)
def test_format_value_gives_short_labels(value: JsonValue, label: str) -> None:
    assert format_value(value) == label


# Properties.

whole = st.integers(min_value=-1000, max_value=1000)
decimals = st.decimals(min_value=-100, max_value=100, places=2)
steps = st.decimals(min_value=Decimal("0.05"), max_value=10, places=2)


@given(start=whole, end=whole, step=st.integers(min_value=1, max_value=50))
def test_integer_ranges_step_from_the_start_and_never_pass_the_end(
    start: int, end: int, step: int
) -> None:
    values = parse(f"{start}-{end} ({step})", integer(), max_count=5000)
    direction = 1 if end >= start else -1
    assert values == tuple(range(start, end + direction, step * direction))


@given(start=decimals, end=decimals, step=steps)
def test_float_ranges_are_exact_decimals_within_the_typed_bounds(
    start: Decimal, end: Decimal, step: Decimal
) -> None:
    sign = "+" if end >= start else "-"
    values = parse(f"{start}-{end} ({sign}{step})", number(), max_count=5000)
    low, high = min(start, end), max(start, end)
    assert len(values) == int(abs(end - start) // step) + 1
    direction = 1 if end >= start else -1
    assert values == tuple(float(start + direction * k * step) for k in range(len(values)))
    assert all(float(low) <= v <= float(high) for v in values)


@given(start=decimals, end=decimals, count=st.integers(min_value=2, max_value=50))
def test_count_ranges_hit_both_ends_and_stay_within_them(
    start: Decimal, end: Decimal, count: int
) -> None:
    if start == end:
        return
    values = parse(f"{start}-{end} [{count}]", number())
    assert len(values) == count
    assert (values[0], values[-1]) == (float(start), float(end))
    assert all(float(min(start, end)) <= v <= float(max(start, end)) for v in values)


@given(st.lists(st.text(), min_size=1, max_size=8, unique=True))
def test_quoting_every_item_gives_back_exactly_those_strings(items: list[str]) -> None:
    text = ", ".join('"' + item.replace('"', '""') + '"' for item in items)
    assert parse(text, string()) == tuple(items)
