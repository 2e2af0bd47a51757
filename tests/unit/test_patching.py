"""Patching a run's values into a copy of the workflow graph, never into the template."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import Binding, Contract, Parameter
from app.domain.patching import bound_values, patch_graph


def template() -> dict[str, Any]:
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1,
                "steps": 20,
                "cfg": 7.0,
                "model": ["4", 0],
                "positive": ["6", 0],
            },
            "_meta": {"title": "KSampler"},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "10": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 10}},
    }


def param(name: str, type_: str, *bindings: tuple[str, str]) -> Parameter:
    return Parameter(name, type_, tuple(Binding(n, i) for n, i in bindings))  # type: ignore[arg-type]


CONTRACT = Contract(
    workflow="txt2img",
    parameters={
        "seed": param("seed", "integer", ("3", "seed"), ("10", "seed")),
        "steps": param("steps", "integer", ("3", "steps")),
        "cfg": param("cfg", "number", ("3", "cfg")),
        "prompt": param("prompt", "string", ("6", "text")),
    },
    schema={},
)


def test_every_binding_of_an_assigned_parameter_is_set() -> None:
    patched = patch_graph(template(), CONTRACT, {"seed": 42, "prompt": "a dog"})
    assert patched["3"]["inputs"]["seed"] == 42
    assert patched["10"]["inputs"]["seed"] == 42
    assert patched["6"]["inputs"]["text"] == "a dog"


def test_template_variables_are_left_out_of_what_is_patched() -> None:
    assignment = {"prompt": "a cat", "animal": "cat", "seed": 42}
    values = bound_values(CONTRACT, assignment)
    assert values == {"prompt": "a cat", "seed": 42}
    assert patch_graph(template(), CONTRACT, values)["3"]["inputs"]["seed"] == 42
    with pytest.raises(KeyError):  # the patch itself stays strict
        patch_graph(template(), CONTRACT, assignment)


def test_unassigned_inputs_and_links_are_kept() -> None:
    patched = patch_graph(template(), CONTRACT, {"cfg": 5.5})
    expected = template()
    expected["3"]["inputs"]["cfg"] = 5.5
    assert patched == expected


def test_the_template_is_never_mutated() -> None:
    graph = template()
    patch_graph(graph, CONTRACT, {"seed": 42, "steps": 30, "cfg": 5.5, "prompt": "x"})
    assert graph == template()


def test_the_result_shares_no_container_with_the_template() -> None:
    graph = template()
    patched = patch_graph(graph, CONTRACT, {"seed": 42})
    originals = {id(c) for c in containers(graph)}
    assert not any(id(c) in originals for c in containers(patched))


def test_the_result_does_not_share_an_assigned_list_value() -> None:
    value = [1, 2]
    patched = patch_graph(template(), CONTRACT, {"prompt": value})
    value.append(3)
    assert patched["6"]["inputs"]["text"] == [1, 2]


def test_a_read_only_template_is_patched_into_plain_dicts_and_lists() -> None:
    frozen = MappingProxyType({"3": MappingProxyType({"inputs": {"seed": 1, "model": ("4", 0)}})})
    contract = Contract("t", {"seed": param("seed", "integer", ("3", "seed"))}, {})
    assert patch_graph(frozen, contract, {"seed": 5}) == {
        "3": {"inputs": {"seed": 5, "model": ["4", 0]}}
    }


def test_a_name_that_is_not_a_parameter_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="denoise"):
        patch_graph(template(), CONTRACT, {"denoise": 0.5})


def test_a_binding_to_a_missing_node_is_a_key_error_naming_node_and_input() -> None:
    contract = Contract("t", {"seed": param("seed", "integer", ("99", "seed"))}, {})
    with pytest.raises(KeyError, match=r"'99' input 'seed'"):
        patch_graph(template(), contract, {"seed": 1})


def test_a_binding_to_a_missing_input_is_a_key_error_naming_node_and_input() -> None:
    contract = Contract("t", {"seed": param("seed", "integer", ("6", "noise_seed"))}, {})
    with pytest.raises(KeyError, match=r"'6' input 'noise_seed'"):
        patch_graph(template(), contract, {"seed": 1})


def containers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict | list):
        yield value
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            yield from containers(item)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(sorted(CONTRACT.parameters)), json_values))
def test_patching_never_mutates_the_template(assignment: dict[str, Any]) -> None:
    graph = template()
    before = copy.deepcopy(graph)
    patched = patch_graph(graph, CONTRACT, assignment)
    assert graph == before
    for name, value in assignment.items():
        for binding in CONTRACT.parameters[name].bindings:
            assert patched[binding.node_id]["inputs"][binding.input_name] == value
