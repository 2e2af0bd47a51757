"""A parameters schema becomes a contract only if every rule and binding is usable, and each
value a sweep asks for is checked against exactly the rules the schema states."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import contracts
from app.domain.contracts import (
    Binding,
    Contract,
    ContractError,
    Parameter,
    build_contract,
    check_bindings,
    contract_defaults,
    validate_value,
    validate_values,
)


def schema_with(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Test",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def seed_schema() -> dict[str, Any]:
    return schema_with(
        seed={
            "type": "integer",
            "minimum": 0,
            "maximum": 2**53 - 1,
            "default": 0,
            "x-comfy": [{"node": "3", "input": "seed"}],
        },
        sampler={
            "type": "string",
            "enum": ["euler", "heun"],
            "default": "euler",
            "x-comfy": [{"node": "3", "input": "sampler_name"}],
        },
    )


def param(type_: str, **rules: Any) -> Parameter:
    """A parameter with one binding whose default satisfies `rules` (given explicitly)."""
    prop = {"type": type_, "x-comfy": [{"node": "1", "input": "x"}], **rules}
    return build_contract("w", schema_with(p=prop)).parameters["p"]


def rejection(schema: dict[str, Any]) -> ContractError:
    with pytest.raises(ContractError) as caught:
        build_contract("w", schema)
    return caught.value


def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """The seed schema with the value at `path` replaced (or deleted when value is ...)."""
    schema = seed_schema()
    target = schema
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return schema


SEED = ("properties", "seed")

# --- building ------------------------------------------------------------------------------


def test_a_schema_becomes_parameters_in_schema_order() -> None:
    contract = build_contract("sd", seed_schema())
    assert list(contract.parameters) == ["seed", "sampler"]
    seed = contract.parameters["seed"]
    assert seed.type == "integer"
    assert seed.bindings == (Binding(node_id="3", input_name="seed"),)
    assert (seed.minimum, seed.maximum, seed.default) == (0, 2**53 - 1, 0)
    assert contract.parameters["sampler"].enum == ("euler", "heun")


def test_defaults_are_the_values_of_a_run_that_varies_nothing() -> None:
    assert contract_defaults(build_contract("sd", seed_schema())) == {
        "seed": 0,
        "sampler": "euler",
    }


def test_one_parameter_may_drive_several_inputs() -> None:
    schema = changed(
        (*SEED, "x-comfy"), [{"node": "3", "input": "seed"}, {"node": "7", "input": "seed"}]
    )
    assert [b.node_id for b in build_contract("w", schema).parameters["seed"].bindings] == [
        "3",
        "7",
    ]


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        pytest.param(
            changed((*SEED, "minimum"), "zero"), "/properties/seed/minimum", id="not-compiling"
        ),
        pytest.param(changed(("required",), "seed"), "/required", id="not-compiling-root"),
        pytest.param(
            changed(("$schema",), "http://json-schema.org/draft-07/schema#"),
            "/$schema",
            id="draft-07",
        ),
        pytest.param(changed(("type",), "array"), "/type", id="root-not-object"),
        pytest.param(changed(("properties",), {}), "/properties", id="no-parameters"),
        pytest.param(changed(("properties",), ...), "/properties", id="no-properties"),
        pytest.param(changed(("additionalProperties",), ...), "/additionalProperties", id="open"),
        pytest.param(
            changed(("additionalProperties",), True), "/additionalProperties", id="open-true"
        ),
        pytest.param(changed(SEED, True), "/properties/seed", id="boolean-schema"),
        pytest.param(changed((*SEED, "type"), "array"), "/properties/seed/type", id="array-type"),
        pytest.param(
            changed((*SEED, "type"), ["integer", "null"]), "/properties/seed/type", id="type-list"
        ),
        pytest.param(changed((*SEED, "type"), ...), "/properties/seed/type", id="no-type"),
        pytest.param(
            changed((*SEED, "x-comfy"), ...), "/properties/seed/x-comfy", id="no-bindings"
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), []), "/properties/seed/x-comfy", id="empty-bindings"
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), {"node": "3"}), "/properties/seed/x-comfy", id="not-list"
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), ["3.seed"]), "/properties/seed/x-comfy/0", id="not-object"
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), [{"node": 3, "input": "seed"}]),
            "/properties/seed/x-comfy/0/node",
            id="numeric-node-id",
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), [{"node": "3"}]),
            "/properties/seed/x-comfy/0/input",
            id="no-input",
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), [{"node": "3", "input": ""}]),
            "/properties/seed/x-comfy/0/input",
            id="empty-input",
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), [{"node": "3", "input": "seed", "weight": 1}]),
            "/properties/seed/x-comfy/0/weight",
            id="unknown-key",
        ),
        pytest.param(changed((*SEED, "default"), ...), "/properties/seed", id="no-default"),
        pytest.param(
            changed((*SEED, "default"), -1), "/properties/seed/default", id="default-below-min"
        ),
        pytest.param(
            changed((*SEED, "default"), True), "/properties/seed/default", id="default-bool"
        ),
        pytest.param(
            changed((*SEED, "default"), 7.0), "/properties/seed/default", id="default-float"
        ),
        pytest.param(changed((*SEED, "$ref"), "#/$defs/seed"), "/properties/seed", id="ref"),
        pytest.param(
            changed(("properties", "sampler", "x-comfy"), [{"node": "3", "input": "seed"}]),
            "/properties/sampler/x-comfy/0",
            id="input-bound-twice",
        ),
        pytest.param(
            changed((*SEED, "x-comfy"), [{"node": "3", "input": "seed"}] * 2),
            "/properties/seed/x-comfy/1",
            id="binding-repeated",
        ),
    ],
)
def test_an_unfit_schema_is_rejected_with_a_pointer(schema: dict[str, Any], pointer: str) -> None:
    error = rejection(schema)
    assert error.pointer == pointer
    assert str(error).startswith(f"{pointer}: ")


def test_a_pointer_escapes_slash_and_tilde_in_names() -> None:
    schema = seed_schema()
    schema["properties"]["a/b~c"] = {"type": "array"}
    assert rejection(schema).pointer == "/properties/a~1b~0c/type"


def test_the_message_says_why() -> None:
    error = rejection(changed((*SEED, "default"), -1))
    assert error.message == "breaks its own rules: seed -1 is below the minimum 0"


def test_building_does_not_change_the_schema() -> None:
    schema = seed_schema()
    before = copy.deepcopy(schema)
    build_contract("w", schema)
    assert schema == before


# --- bindings against a graph --------------------------------------------------------------

GRAPH = {
    "3": {
        "class_type": "KSampler",
        "inputs": {"seed": 0, "sampler_name": "euler", "model": ["4", 0]},
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
}


def test_bindings_to_literal_inputs_are_fine() -> None:
    assert check_bindings(build_contract("w", seed_schema()), GRAPH) == []


@pytest.mark.parametrize(
    ("binding", "pointer", "message"),
    [
        ({"node": "9", "input": "seed"}, "/properties/seed/x-comfy/0/node", "node '9' is not in"),
        ({"node": "3", "input": "sed"}, "/properties/seed/x-comfy/0/input", "has no input 'sed'"),
        ({"node": "3", "input": "model"}, "/properties/seed/x-comfy/0/input", "is a link"),
    ],
)
def test_a_binding_the_graph_cannot_honour_is_reported(
    binding: dict[str, str], pointer: str, message: str
) -> None:
    contract = build_contract("w", changed((*SEED, "x-comfy"), [binding]))
    [(found_pointer, found_message)] = check_bindings(contract, GRAPH)
    assert found_pointer == pointer
    assert message in found_message


def test_every_bad_binding_is_reported() -> None:
    schema = changed(
        (*SEED, "x-comfy"), [{"node": "9", "input": "seed"}, {"node": "3", "input": "x"}]
    )
    schema["properties"]["sampler"]["x-comfy"] = [{"node": "4", "input": "sampler_name"}]
    pointers = [pointer for pointer, _ in check_bindings(build_contract("w", schema), GRAPH)]
    assert pointers == [
        "/properties/seed/x-comfy/0/node",
        "/properties/seed/x-comfy/1/input",
        "/properties/sampler/x-comfy/0/input",
    ]


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "type_", "msg"),
    [
        (
            param("number", maximum=100, default=7),
            120,
            "value_bigger_than_max",
            "p 120 is above the maximum 100",
        ),
        (
            param("number", exclusiveMaximum=1, default=0),
            1,
            "value_bigger_than_max",
            "p 1 is not below the exclusive maximum 1",
        ),
        (
            param("integer", minimum=1, default=20),
            0,
            "value_smaller_than_min",
            "p 0 is below the minimum 1",
        ),
        (
            param("number", exclusiveMinimum=0, default=1),
            0.0,
            "value_smaller_than_min",
            "p 0.0 is not above the exclusive minimum 0",
        ),
        (
            param("string", enum=["euler", "heun"], default="euler"),
            "dpm",
            "value_not_in_list",
            'p "dpm" is not one of "euler", "heun"',
        ),
        (
            param("string", const="euler", default="euler"),
            "heun",
            "value_not_in_list",
            'p "heun" is not "euler"',
        ),
        (param("integer", default=1), "7", "invalid_input_type", 'p "7" is not an integer'),
        (param("number", default=1), None, "invalid_input_type", "p null is not a number"),
        (param("string", default=""), 5, "invalid_input_type", "p 5 is not a string"),
        (param("boolean", default=False), "yes", "invalid_input_type", 'p "yes" is not a boolean'),
        (
            param("integer", multipleOf=8, default=512),
            513,
            "value_not_multiple_of_step",
            "p 513 is not a multiple of 8",
        ),
        (
            param("string", maxLength=3, default=""),
            "abcd",
            "invalid_value",
            'p "abcd" is longer than 3 characters',
        ),
        (
            param("string", minLength=1, default="a"),
            "",
            "invalid_value",
            'p "" is shorter than 1 characters',
        ),
        (
            param("string", pattern="^[a-z]+$", default="a"),
            "../x",
            "invalid_value",
            'p "../x" does not match the pattern ^[a-z]+$',
        ),
        (param("integer", default=1, **{"not": {"const": 3}}), 3, "invalid_value", "p 3: "),
    ],
)
def test_each_broken_rule_becomes_a_problem_named_like_comfyui(
    parameter: Parameter, value: object, type_: str, msg: str
) -> None:
    problem = validate_value(parameter, value, ("axes", 0, "values", 2))
    assert problem is not None
    assert problem.loc == ("axes", 0, "values", 2)
    assert problem.type == type_
    assert problem.msg.startswith(msg)
    assert problem.input == value


def test_a_value_within_the_rules_is_no_problem() -> None:
    cfg = param("number", minimum=0, maximum=100, default=7)
    assert [validate_value(cfg, value, ()) for value in (0, 7.5, 100)] == [None] * 3


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_an_integer_nor_a_number(value: bool) -> None:
    # Python counts True as the int 1; JSON and ComfyUI do not.
    for type_ in ("integer", "number"):
        problem = validate_value(param(type_, default=0), value, ())
        assert problem is not None
        assert problem.type == "invalid_input_type"


@pytest.mark.parametrize("value", [0, 1])
def test_an_integer_is_not_a_boolean(value: int) -> None:
    problem = validate_value(param("boolean", default=False), value, ())
    assert problem is not None
    assert problem.type == "invalid_input_type"


def test_an_integer_parameter_rejects_an_integral_float() -> None:
    # JSON Schema would take 7.0; we refuse it so the graph, cache key and infotext get 7.
    problem = validate_value(param("integer", default=1), 7.0, ())
    assert problem is not None
    assert problem.msg == "p 7.0 is not an integer"


def test_a_number_parameter_takes_an_integer() -> None:
    assert validate_value(param("number", default=1.0), 7, ()) is None


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_number_is_rejected(value: float) -> None:
    problem = validate_value(param("number", default=1.0), value, ())
    assert problem is not None
    assert problem.type == "invalid_input_type"


def test_a_decimal_step_accepts_what_the_user_wrote() -> None:
    # Plain float division calls 0.3 "not a multiple of" 0.1.
    strength = param("number", multipleOf=0.1, default=0.5)
    assert [validate_value(strength, value, ()) for value in (0.3, 0.7, 1.1)] == [None] * 3
    problem = validate_value(strength, 0.75, ())
    assert problem is not None
    assert problem.type == "value_not_multiple_of_step"


def test_a_wrong_type_is_reported_before_other_rules() -> None:
    steps = param("integer", enum=[10, 20], default=10)
    problem = validate_value(steps, "fast", ())
    assert problem is not None
    assert problem.type == "invalid_input_type"


def test_a_long_list_of_options_is_cut_short() -> None:
    sampler = param("string", enum=[f"s{i}" for i in range(42)], default="s0")
    problem = validate_value(sampler, "zz", ())
    assert problem is not None
    assert problem.msg.endswith('"s9" (and 32 more)')


SAMPLERS = [f"s{i}" for i in range(40)] + ["dpmpp_2m", "dpmpp_2m_sde"]


def test_a_misspelt_option_gets_the_closest_options_before_the_list() -> None:
    sampler = param("string", enum=SAMPLERS, default="s0")
    problem = validate_value(sampler, "dpmpp_2m_sd", ())
    assert problem is not None
    assert problem.type == "value_not_in_list"
    assert problem.msg == (
        'p "dpmpp_2m_sd" is not one of the options; did you mean "dpmpp_2m_sde", "dpmpp_2m"? '
        'They are: "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9" (and 32 more)'
    )


def test_at_most_three_close_options_are_suggested() -> None:
    sampler = param("string", enum=["euler", "euler_a", "euler_aa", "euler_aaa"], default="euler")
    problem = validate_value(sampler, "euler_", ())
    assert problem is not None
    assert 'did you mean "euler_a", "euler", "euler_aa"?' in problem.msg


def test_a_value_like_no_option_gets_no_suggestion() -> None:
    steps = param("integer", enum=[10, 20], default=10)
    problem = validate_value(steps, 15, ())
    assert problem is not None
    assert problem.msg == "p 15 is not one of 10, 20"


def test_a_long_value_is_cut_short_in_the_message() -> None:
    prompt = param("string", maxLength=10, default="")
    problem = validate_value(prompt, "x" * 1000, ())
    assert problem is not None
    assert len(problem.msg) < 100


def at_item(j: int) -> tuple[str | int, ...]:
    return ("axes", 0, "values", j)


def test_a_range_breaking_one_rule_is_one_problem_at_its_first_offending_value() -> None:
    blur = param("integer", minimum=1, maximum=31, default=1)
    [problem] = validate_values(blur, list(range(1, 101)), at_item)
    assert problem.loc == ("axes", 0, "values", 31)
    assert problem.type == "value_bigger_than_max"
    assert problem.input == 32
    assert problem.msg == "p 32 is above the maximum 31 (and 68 more values of this axis)"


def test_each_rule_an_axis_breaks_is_one_problem_in_order_of_first_offence() -> None:
    blur = param("integer", minimum=1, maximum=31, default=1)
    problems = validate_values(blur, [5, 40, 0, 50, -1, 7, 31, "x"], at_item)
    assert [(p.loc[-1], p.type, p.input) for p in problems] == [
        (1, "value_bigger_than_max", 40),
        (2, "value_smaller_than_min", 0),
        (7, "invalid_input_type", "x"),
    ]
    assert [p.msg for p in problems] == [
        "p 40 is above the maximum 31 (and 1 more value of this axis)",
        "p 0 is below the minimum 1 (and 1 more value of this axis)",
        'p "x" is not an integer',
    ]


def test_values_within_the_rules_are_no_problem() -> None:
    blur = param("integer", minimum=1, maximum=31, default=1)
    assert validate_values(blur, list(range(1, 32)), at_item) == []


STEPS = param("integer", minimum=1, maximum=150, default=20)


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_integer_parameter_takes_exactly_the_integers_in_range(value: int) -> None:
    accepted = validate_value(STEPS, value, ()) is None
    assert accepted == (1 <= value <= 150)


def count_compilations(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    compiled: list[object] = []
    real = contracts._ValueValidator

    def compile_and_count(schema: Any) -> Any:
        compiled.append(schema)
        return real(schema)

    monkeypatch.setattr(contracts, "_ValueValidator", compile_and_count)
    return compiled


def test_a_contract_compiles_each_validator_once(monkeypatch: pytest.MonkeyPatch) -> None:
    contract = build_contract("w", seed_schema())
    compiled = count_compilations(monkeypatch)
    for value in range(1000):
        validate_value(contract.parameters["seed"], value, ())
    assert compiled == []


def test_a_hand_built_parameter_is_compiled_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    parameter = Parameter(
        name="cfg",
        type="number",
        bindings=(Binding("3", "cfg"),),
        default=7.0,
        schema={"type": "number", "maximum": 100},
    )
    compiled = count_compilations(monkeypatch)
    problems = [validate_value(parameter, value, ()) for value in (1, 120, 5)]
    assert len(compiled) == 1
    assert [p.type if p else None for p in problems] == [None, "value_bigger_than_max", None]


def test_equal_parameters_with_different_rules_keep_their_own_validators() -> None:
    # Parameter equality ignores `schema`, so a cache keyed by equality would mix these up.
    loose = Parameter("p", "string", (Binding("1", "x"),), schema={"type": "string"})
    strict = Parameter(
        "p", "string", (Binding("1", "x"),), schema={"type": "string", "maxLength": 1}
    )
    assert loose == strict
    assert validate_value(loose, "abc", ()) is None
    assert validate_value(strict, "abc", ()) is not None


def test_a_contract_keeps_the_schema_it_came_from() -> None:
    schema = seed_schema()
    contract = build_contract("sd", schema)
    assert isinstance(contract, Contract)
    assert contract.workflow == "sd"
    assert contract.schema == schema
