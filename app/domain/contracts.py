"""A workflow's parameter contract: which parameters a caller may set, their rules, and the
node inputs each one drives.

The contract is built from a JSON Schema (2020-12) document whose properties each carry an
`x-comfy` list of bindings. Validation of values uses the `jsonschema` library on the
property's own sub-schema, so the rules a caller reads in `params/*.schema.json` are exactly
the rules applied, with two deliberate differences: an `integer` is a Python int and never
a bool or an integral float (7.0 is refused, so the graph gets 7), and `multipleOf` compares
decimal values exactly (0.3 is a multiple of 0.1). Problems reuse ComfyUI's validation names.
Pure: no file access here (the registry reads the files).
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, cast

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import create

from app.domain.problems import Loc, Problem, and_more, close_options
from app.domain.tags import bad_tag

ParamType = Literal["integer", "number", "string", "boolean"]
JsonValue = Any  # a value decoded from JSON: str | int | float | bool | None | list | dict


@dataclass(frozen=True)
class Binding:
    """One node input driven by a parameter: `graph[node_id]["inputs"][input_name]`."""

    node_id: str
    input_name: str


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    bindings: tuple[Binding, ...]
    default: JsonValue = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    enum: tuple[JsonValue, ...] | None = None
    description: str = ""
    schema: Mapping[str, JsonValue] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Contract:
    workflow: str
    parameters: Mapping[str, Parameter]
    schema: Mapping[str, JsonValue] = field(compare=False, repr=False)
    # Instance tags every run needs (`x-comfy-requires`), e.g. ("sdxl",): only instances
    # configured with all of them take its runs.
    requires: tuple[str, ...] = ()


SUPPORTED_TYPES: tuple[ParamType, ...] = ("integer", "number", "string", "boolean")
_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_BINDING_KEYS = frozenset({"node", "input"})
# Top-level key of the parameters schema naming the instance tags its runs need.
REQUIRES_KEY = "x-comfy-requires"


class ContractError(Exception):
    """A parameters schema that cannot become a contract; `pointer` locates the fault in it."""

    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message
        super().__init__(f"{pointer or '(root)'}: {message}")


# --- value rules ---------------------------------------------------------------------------


def _is_integer(_checker: object, instance: object) -> bool:
    # JSON Schema calls 7.0 an integer; we do not. The value is patched into the graph
    # verbatim, so 7.0 would reach ComfyUI, the cache key and the infotext as a float.
    # bool is excluded because Python counts True as the int 1.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(_checker: object, instance: object) -> bool:
    # Python's json module decodes NaN and Infinity, which are not JSON and no node accepts.
    if isinstance(instance, bool) or not isinstance(instance, int | float):
        return False
    return math.isfinite(instance)


def _multiple_of(
    validator: Any, divisor: Any, instance: Any, _schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "number"):
        return
    # jsonschema divides floats, so 0.3 is "not a multiple of" 0.1 (0.3 / 0.1 = 2.9999...).
    # Comparing the decimal forms as exact fractions matches what the user wrote.
    if (Fraction(str(instance)) / Fraction(str(divisor))).denominator != 1:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


_ValueValidator = create(
    meta_schema=Draft202012Validator.META_SCHEMA,
    validators={**Draft202012Validator.VALIDATORS, "multipleOf": _multiple_of},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}
    ),
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)

# Compiled validators, keyed by the Parameter's identity: a 10,000-run expansion validates
# many values per parameter, and compiling a validator costs far more than applying one.
# Identity rather than equality because Parameter equality ignores `schema` (a `pattern` or
# `maxLength` differs there only); the finalizer drops the entry before the id can be reused.
_validators: dict[int, Validator] = {}


def _validator_for(parameter: Parameter) -> Validator:
    validator = _validators.get(id(parameter))
    if validator is None:
        validator = _remember(parameter, _ValueValidator(dict(parameter.schema)))
    return validator


def _remember(parameter: Parameter, validator: Validator) -> Validator:
    _validators[id(parameter)] = validator
    weakref.finalize(parameter, _validators.pop, id(parameter), None)
    return validator


# ComfyUI's validation names where they exist (execution.py, validate_inputs).
_PROBLEM_TYPES = {
    "maximum": "value_bigger_than_max",
    "exclusiveMaximum": "value_bigger_than_max",
    "minimum": "value_smaller_than_min",
    "exclusiveMinimum": "value_smaller_than_min",
    "enum": "value_not_in_list",
    "const": "value_not_in_list",
    "type": "invalid_input_type",
    "multipleOf": "value_not_multiple_of_step",
}
_MESSAGES = {
    "maximum": "{name} {value} is above the maximum {limit}",
    "exclusiveMaximum": "{name} {value} is not below the exclusive maximum {limit}",
    "minimum": "{name} {value} is below the minimum {limit}",
    "exclusiveMinimum": "{name} {value} is not above the exclusive minimum {limit}",
    "enum": "{name} {value} is not one of {limit}",
    "const": "{name} {value} is not {limit}",
    "type": "{name} {value} is not {limit}",
    "multipleOf": "{name} {value} is not a multiple of {limit}",
    "minLength": "{name} {value} is shorter than {limit} characters",
    "maxLength": "{name} {value} is longer than {limit} characters",
    "pattern": "{name} {value} does not match the pattern {limit}",
}
_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
}
_ENUM_SHOWN = 10
_VALUE_SHOWN = 60


def validate_value(parameter: Parameter, value: object, loc: Loc) -> Problem | None:
    """The first rule of the parameter's schema that `value` breaks, as a Problem at `loc`."""
    error = _first_error(_validator_for(parameter), value)
    return None if error is None else _problem(parameter, value, error, loc)


def validate_values(
    parameter: Parameter, values: Sequence[JsonValue], loc_of: Callable[[int], Loc]
) -> list[Problem]:
    """One problem per rule the axis `values` break, at the first value breaking it (located
    by `loc_of(its index)`) and counting the others, in order of first offence."""
    validator = _validator_for(parameter)
    first: dict[tuple[str | int, ...], tuple[int, ValidationError]] = {}
    offenders: dict[tuple[str | int, ...], int] = {}
    for index, value in enumerate(values):
        error = _first_error(validator, value)
        if error is None:
            continue
        # The rule's place in the schema, not just its keyword: two `maximum`s in an `allOf`
        # are two rules.
        rule = tuple(error.relative_schema_path)
        first.setdefault(rule, (index, error))
        offenders[rule] = offenders.get(rule, 0) + 1
    problems = []
    for rule, (index, error) in first.items():
        problem = _problem(parameter, values[index], error, loc_of(index))
        more = and_more(offenders[rule] - 1, "value of this axis", "values of this axis")
        problems.append(Problem(problem.loc, problem.type, problem.msg + more, problem.input))
    return problems


def _problem(parameter: Parameter, value: object, error: ValidationError, loc: Loc) -> Problem:
    keyword = str(error.validator)
    return Problem(
        loc=loc,
        type=_PROBLEM_TYPES.get(keyword, "invalid_value"),
        msg=_describe(parameter.name, value, error),
        input=value,
    )


def _first_error(validator: Validator, value: object) -> ValidationError | None:
    errors = list(validator.iter_errors(cast(JsonValue, value)))
    # A wrong type makes every other message meaningless ("'abc' is below the minimum").
    return min(errors, key=lambda e: e.validator != "type", default=None)


def _describe(name: str, value: object, error: ValidationError) -> str:
    keyword = str(error.validator)
    template = _MESSAGES.get(keyword)
    if template is None:
        return f"{name} {_show(value)}: {error.message}"
    limit = _show_limit(keyword, error.validator_value)
    # A schema that compiled has an array under `enum`.
    options = cast(list[JsonValue], error.validator_value) if keyword == "enum" else []
    if close := close_options(value, options):
        guesses = ", ".join(_show(option) for option in close)
        return (
            f"{name} {_show(value)} is not one of the options; did you mean {guesses}? "
            f"They are: {limit}"
        )
    return template.format(name=name, value=_show(value), limit=limit)


def _show_limit(keyword: str, limit: Any) -> str:
    if keyword == "type":
        return _TYPE_NAMES.get(str(limit), str(limit))
    if keyword == "enum":
        shown = ", ".join(_show(option) for option in limit[:_ENUM_SHOWN])
        more = len(limit) - _ENUM_SHOWN
        return f"{shown} (and {more} more)" if more > 0 else shown
    if keyword == "pattern":
        return str(limit)
    return _show(limit)


def _show(value: object) -> str:
    """A value as the caller wrote it in JSON, cut short so a long prompt stays readable."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _VALUE_SHOWN:
        return text[: _VALUE_SHOWN - 1] + "…"
    return text


def contract_defaults(contract: Contract) -> dict[str, JsonValue]:
    """Every parameter's default: the values of a run that varies nothing."""
    return {name: parameter.default for name, parameter in contract.parameters.items()}


# --- building a contract -------------------------------------------------------------------


def build_contract(workflow: str, schema: Mapping[str, Any]) -> Contract:
    """Check a parameters schema and turn it into a Contract; raise ContractError if unfit."""
    _check_compiles(schema)
    _check_root(schema)
    parameters = {name: _build_parameter(name, prop) for name, prop in schema["properties"].items()}
    _check_unique_bindings(parameters)
    requires = _build_requires(schema.get(REQUIRES_KEY, []))
    return Contract(workflow=workflow, parameters=parameters, schema=schema, requires=requires)


def _build_requires(raw: object) -> tuple[str, ...]:
    pointer = f"/{REQUIRES_KEY}"
    if not isinstance(raw, list):
        raise ContractError(pointer, 'must be a list of instance tags, e.g. ["sdxl"]')
    for index, tag in enumerate(raw):
        why = bad_tag(tag) if isinstance(tag, str) else "a tag must be a string"
        if why is not None:
            raise ContractError(f"{pointer}/{index}", why)
    return tuple(sorted(set(raw)))


def _check_compiles(schema: Mapping[str, Any]) -> None:
    dialect = schema.get("$schema", _SCHEMA_DIALECT)
    if dialect != _SCHEMA_DIALECT:
        raise ContractError("/$schema", f"must be {_SCHEMA_DIALECT} (got {_show(dialect)})")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        message = f"not a valid JSON Schema 2020-12: {error.message}"
        raise ContractError(_pointer(error.path), message) from None


def _check_root(schema: Mapping[str, Any]) -> None:
    if schema.get("type") != "object":
        raise ContractError("/type", 'the parameters schema must have "type": "object"')
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        raise ContractError("/properties", "must name at least one parameter")
    if schema.get("additionalProperties") is not False:
        # Without it a misspelt parameter ("sed") would be accepted and silently ignored.
        raise ContractError("/additionalProperties", "must be false")


def _build_parameter(name: str, prop: object) -> Parameter:
    pointer = _pointer(("properties", name))
    if not isinstance(prop, Mapping):
        raise ContractError(pointer, "a parameter must be a schema object")
    type_ = prop.get("type")
    if type_ not in SUPPORTED_TYPES:
        expected = ", ".join(SUPPORTED_TYPES)
        raise ContractError(f"{pointer}/type", f"must be one of {expected} (got {_show(type_)})")
    if _mentions_ref(prop):
        # The value validator sees this sub-schema alone, where a $ref has nothing to resolve.
        raise ContractError(pointer, "$ref is not supported in a parameter; write the rule out")
    validator = _ValueValidator(dict(prop))
    _check_default(name, prop, validator, pointer)
    parameter = Parameter(
        name=name,
        type=cast(ParamType, type_),
        bindings=_build_bindings(prop.get("x-comfy"), f"{pointer}/x-comfy"),
        default=prop["default"],
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        multiple_of=prop.get("multipleOf"),
        enum=tuple(prop["enum"]) if "enum" in prop else None,
        description=str(prop.get("description", "")),
        schema=prop,
    )
    _remember(parameter, validator)
    return parameter


def _mentions_ref(node: object) -> bool:
    if isinstance(node, Mapping):
        if "$ref" in node or "$dynamicRef" in node:
            return True
        return any(_mentions_ref(child) for child in node.values())
    if isinstance(node, list):
        return any(_mentions_ref(child) for child in node)
    return False


def _check_default(name: str, prop: Mapping[str, Any], validator: Validator, at: str) -> None:
    if "default" not in prop:
        raise ContractError(at, "needs a default: the value used when a sweep does not vary it")
    error = _first_error(validator, prop["default"])
    if error is not None:
        reason = _describe(name, prop["default"], error)
        raise ContractError(f"{at}/default", f"breaks its own rules: {reason}")


def _build_bindings(raw: object, pointer: str) -> tuple[Binding, ...]:
    if not isinstance(raw, list) or not raw:
        example = '[{"node": "3", "input": "seed"}]'
        raise ContractError(pointer, f"needs a list of at least one binding, e.g. {example}")
    return tuple(_build_binding(item, f"{pointer}/{index}") for index, item in enumerate(raw))


def _build_binding(item: object, pointer: str) -> Binding:
    if not isinstance(item, Mapping):
        raise ContractError(pointer, 'a binding is an object {"node": id, "input": name}')
    unknown = sorted(set(item) - _BINDING_KEYS)
    if unknown:
        raise ContractError(
            _pointer(unknown[:1], pointer), "unknown key; a binding has node and input"
        )
    for key in ("node", "input"):
        value = item.get(key)
        if not isinstance(value, str) or not value:
            # API-format node ids are strings: "3", never 3.
            raise ContractError(
                f"{pointer}/{key}", f"must be a non-empty string (got {_show(value)})"
            )
    return Binding(node_id=item["node"], input_name=item["input"])


def _check_unique_bindings(parameters: Mapping[str, Parameter]) -> None:
    # Two parameters driving one input would make the patched value depend on their order.
    owners: dict[Binding, str] = {}
    for name, parameter in parameters.items():
        for index, binding in enumerate(parameter.bindings):
            owner = owners.setdefault(binding, name)
            if owner != name or parameter.bindings.index(binding) != index:
                where = _pointer(("properties", name, "x-comfy", index))
                target = f"input {binding.input_name!r} of node {binding.node_id!r}"
                raise ContractError(where, f"{target} is already bound by parameter {owner!r}")


# --- bindings against a graph --------------------------------------------------------------


def check_bindings(contract: Contract, graph: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(schema pointer, message) for each binding the graph cannot honour."""
    found: list[tuple[str, str]] = []
    for name, parameter in contract.parameters.items():
        for index, binding in enumerate(parameter.bindings):
            pointer = _pointer(("properties", name, "x-comfy", index))
            problem = _check_binding(binding, graph)
            if problem is not None:
                found.append((f"{pointer}/{problem[0]}", problem[1]))
    return found


def _check_binding(binding: Binding, graph: Mapping[str, Any]) -> tuple[str, str] | None:
    node = graph.get(binding.node_id)
    if not isinstance(node, Mapping):
        return "node", f"node {binding.node_id!r} is not in the workflow"
    inputs = node.get("inputs")
    label = f"node {binding.node_id!r} ({node.get('class_type')})"
    if not isinstance(inputs, Mapping) or binding.input_name not in inputs:
        return "input", f"{label} has no input {binding.input_name!r} in the workflow"
    if _is_link(inputs[binding.input_name]):
        return "input", f"input {binding.input_name!r} of {label} is a link, not a value"
    return None


def _is_link(value: object) -> bool:
    """API format writes a link to another node's output as `[source_node_id, output_index]`."""
    return isinstance(value, list) and len(value) == 2


def _pointer(parts: Iterable[str | int], base: str = "") -> str:
    """RFC 6901 JSON pointer: `~` and `/` inside a key are escaped as `~0` and `~1`."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return base + "".join(f"/{part}" for part in escaped)
