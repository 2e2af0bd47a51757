"""Reading an uploaded wildcard list, one entry per line."""

from __future__ import annotations

import pytest

from app.domain.wildcard_lists import WildcardListError, is_list_name, parse_wildcard_list


def test_entries_are_trimmed_lines_without_blanks_or_comments() -> None:
    text = "# animals\ncat\n\n  dog  \r\n#bird\nred fox\n"
    assert parse_wildcard_list(text) == ("cat", "dog", "red fox")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("cat\ndog\ncat\n", 3, "repeats line 1"),
        ("cat\n" + "x" * 2001, 2, "2001 characters"),
        ("a\x00b", 1, "NUL"),
        ("# only comments\n\n", 0, "no entries"),
    ],
)
def test_a_bad_list_names_its_line_and_reason(text: str, line: int, words: str) -> None:
    with pytest.raises(WildcardListError) as error:
        parse_wildcard_list(text)
    assert error.value.line == line
    assert words in str(error.value)


def test_more_entries_than_the_limit_is_refused_at_the_first_one_over() -> None:
    with pytest.raises(WildcardListError) as error:
        parse_wildcard_list("\n".join(f"e{i}" for i in range(4)), max_entries=3)
    assert (error.value.line, error.value.reason) == (4, "the list has more than 3 entries")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("animals", True),
        ("my-list_2", True),
        ("a", True),
        ("_x", False),
        ("x_", False),
        ("a__b", False),
        ("Animals", False),
        ("a" * 65, False),
    ],
)
def test_list_names_are_ones_a_prompt_can_reference(name: str, ok: bool) -> None:
    assert is_list_name(name) is ok
