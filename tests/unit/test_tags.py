"""Instance tags: spelling, stored form, the subsets the claim matches, and whether a pool
can serve a requirement; and where they come from (contract, settings)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.contracts import ContractError, build_contract
from app.domain.tags import bad_tag, covers, join_tags, missing_everywhere, tag_subsets
from app.settings import parse_instances

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer", "default": 1, "x-comfy": [{"node": "3", "input": "seed"}]}
    },
}


def test_the_stored_form_is_sorted_distinct_and_plus_joined() -> None:
    assert join_tags(["sdxl", "48gb", "sdxl"]) == "48gb+sdxl"
    assert join_tags([]) == ""


def test_an_instance_covers_every_subset_of_its_tags_and_nothing_else() -> None:
    assert sorted(tag_subsets(["sdxl", "48gb"])) == ["", "48gb", "48gb+sdxl", "sdxl"]
    assert tag_subsets([]) == [""]
    assert covers(["48gb", "sdxl"], ["sdxl"])
    assert not covers(["sdxl"], ["sdxl", "48gb"])


def test_a_requirement_is_servable_if_one_instance_has_every_tag() -> None:
    assert missing_everywhere(["sdxl", "48gb"], [["sdxl"], ["48gb", "sdxl", "fast"]]) is None
    assert missing_everywhere([], []) is None


def test_an_unservable_requirement_names_what_the_closest_instance_lacks() -> None:
    assert missing_everywhere(["sdxl", "48gb"], [[], ["sdxl"]]) == ("48gb",)
    assert missing_everywhere(["sdxl"], []) == ("sdxl",)


@pytest.mark.parametrize("tag", ["", "a+b", "a#b", "-x", "a" * 33, "sd xl"])
def test_a_bad_tag_is_refused_with_the_reason(tag: str) -> None:
    assert bad_tag(tag) is not None


def test_a_contract_reads_its_required_tags() -> None:
    contract = build_contract("w", {**SCHEMA, "x-comfy-requires": ["sdxl", "48gb"]})
    assert contract.requires == ("48gb", "sdxl")
    assert build_contract("w", SCHEMA).requires == ()


@pytest.mark.parametrize(
    ("requires", "pointer"),
    [
        ("sdxl", "/x-comfy-requires"),
        (["ok", "not ok"], "/x-comfy-requires/1"),
        ([3], "/x-comfy-requires/0"),
    ],
)
def test_bad_required_tags_in_a_contract_are_refused_with_a_pointer(
    requires: object, pointer: str
) -> None:
    with pytest.raises(ContractError) as caught:
        build_contract("w", {**SCHEMA, "x-comfy-requires": requires})
    assert caught.value.pointer == pointer


def test_instance_tags_in_settings_are_checked_naming_the_entry() -> None:
    assert parse_instances("http://a:1#sdxl+48gb")[0].tags == ("sdxl", "48gb")
    with pytest.raises(ValueError, match=r"'http://a:1#sd xl'.*must be"):
        parse_instances("http://a:1#sd xl")
    with pytest.raises(ValueError, match="more than 8 tags"):
        parse_instances("http://a:1#" + "+".join(f"t{n}" for n in range(9)))
