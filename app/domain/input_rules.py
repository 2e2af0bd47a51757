"""Checks one literal value against one node input's spec, as ComfyUI's `validate_inputs` does.

Covers the literal types, INT/FLOAT ranges and COMBO membership, plus the one check ComfyUI
0.3.64 skips: a value outside a newer-style `["COMBO", {"options": [...]}]` input is accepted
with 200 and only fails at execution (`ImageQuantize.dither = "sparkle"`,
captures/post_prompt_bad_combo). Literal types are checked strictly where ComfyUI would coerce
(`int("7")`, `bool("no")`): the value we send is the value recorded for the run, so it must
already be the right type. A fault pairs ComfyUI's name for the problem with a reason a person
can act on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

from app.domain.input_specs import InputSpec, combo_options, extra_info, input_kind
from app.domain.problems import close_options

InputFault = tuple[str, str]  # (problem type, reason)

# The literal types ComfyUI converts in validate_inputs, and the Python types we let through
# unconverted: an int is a fine FLOAT (ComfyUI calls float() on it), a bool is no INT.
_NUMBER_KINDS = frozenset({"INT", "FLOAT"})
_ARTICLES = {"INT": "an INT", "FLOAT": "a FLOAT", "STRING": "a STRING", "BOOLEAN": "a BOOLEAN"}
_ACCEPTED_TYPES: dict[str, set[type]] = {
    "INT": {int},
    "FLOAT": {int, float},
    "STRING": {str},
    "BOOLEAN": {bool},
}
# What the options of well-known COMBO inputs are, for messages a person can act on.
_OPTION_NOUNS = {
    "sampler_name": "samplers",
    "scheduler": "schedulers",
    "ckpt_name": "checkpoints",
    "lora_name": "LoRAs",
    "unet_name": "diffusion models",
    "vae_name": "VAEs",
    "clip_name": "text encoders",
    "control_net_name": "ControlNets",
    "model_name": "models",
}
_OPTIONS_LISTED = 10
_VALUE_SHOWN = 60


class InputRule:
    """The checks for literal values of one input, compiled once per spec: a sweep checks
    thousands of values against a handful of inputs."""

    def __init__(self, input_name: str, spec: InputSpec) -> None:
        self.input_name = input_name
        self.kind = input_kind(spec)
        extra = extra_info(spec)
        self.minimum = extra.get("min")
        self.maximum = extra.get("max")
        self.options: Sequence[Any] = combo_options(spec) if self.kind == "COMBO" else ()
        self.option_set = _hashable_set(self.options)

    def problem(self, value: object, *, suggest: bool = True) -> InputFault | None:
        """`suggest=False` leaves out the closest options of a COMBO, for callers that only
        classify values: matching against thousands of model files is not free."""
        if self.kind == "COMBO":
            return self._combo_problem(value, suggest)
        if self.kind not in _ARTICLES:
            # A link-only type (MODEL) or a custom widget: ComfyUI checks no literal here.
            return None
        if not _has_kind(self.kind, value):
            return "invalid_input_type", f"{show_value(value)} is not {_ARTICLES[self.kind]}"
        if self.kind in _NUMBER_KINDS:
            return self._range_problem(value)
        return None

    def accepts_all(self, values: Sequence[object]) -> bool:
        """True when `problem` would find nothing in any of `values`, decided with C-level
        set, min and max calls: a sweep may vary 10,000 distinct seeds or sample points.
        False only means they must be looked at one by one."""
        if self.kind == "COMBO":
            try:
                return self.option_set is not None and self.option_set.issuperset(values)
            except TypeError:  # an unhashable value
                return False
        if self.kind not in _ARTICLES or not values:
            return True
        if not set(map(type, values)) <= _ACCEPTED_TYPES[self.kind]:
            return False
        if self.kind == "FLOAT" and not all(map(math.isfinite, cast(Sequence[float], values))):
            return False
        return self.kind not in _NUMBER_KINDS or self._within_range(cast(Sequence[float], values))

    def _within_range(self, values: Sequence[float]) -> bool:
        if self.minimum is not None and min(values) < self.minimum:
            return False
        return self.maximum is None or max(values) <= self.maximum

    def _range_problem(self, value: Any) -> InputFault | None:
        # Same order and names as validate_inputs: min first, then max.
        if self.minimum is not None and value < self.minimum:
            return "value_smaller_than_min", f"{value} is below this instance's min {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return "value_bigger_than_max", f"{value} is above this instance's max {self.maximum}"
        return None

    def _combo_problem(self, value: object, suggest: bool) -> InputFault | None:
        if not self.options:
            # Model-file inputs list the files in the instance's models folder, so an empty
            # list means it has none and every value fails (ComfyUI: value_not_in_list).
            reason = f"{show_value(value)} cannot load: no {self.input_name} files on this instance"
            return "value_not_in_list", reason
        if _is_member(value, self.option_set, self.options):
            return None
        close = close_options(value, self.options) if suggest else []
        return "value_not_in_list", f"{show_value(value)} is not one of {self._offered(close)}"

    def _offered(self, close: Sequence[str]) -> str:
        count = len(self.options)
        noun = _OPTION_NOUNS.get(self.input_name.rstrip("0123456789"))
        text = f"the {count} {noun or self.input_name + ' options'} this instance offers"
        if close:
            text += "; did you mean " + ", ".join(show_value(option) for option in close) + "?"
        if count <= _OPTIONS_LISTED:
            text += " They are: " if close else ": "
            text += ", ".join(str(option) for option in self.options)
        return text


def show_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 1] + "…"


def _hashable_set(options: Sequence[Any]) -> frozenset[Any] | None:
    try:
        return frozenset(options)
    except TypeError:
        return None


def _is_member(value: object, option_set: frozenset[Any] | None, options: Sequence[Any]) -> bool:
    if option_set is not None:
        try:
            return value in option_set
        except TypeError:  # an unhashable value equals no hashable option
            return False
    return value in options


def _has_kind(kind: str, value: object) -> bool:
    # Exact types: bool is a subclass of int, and Python counts True as 1.
    if type(value) not in _ACCEPTED_TYPES[kind]:
        return False
    # Python's json decodes NaN and Infinity, which no node's range admits.
    return kind != "FLOAT" or math.isfinite(cast(float, value))
