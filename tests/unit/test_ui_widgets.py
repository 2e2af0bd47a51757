"""A run's values land in the right `widgets_values` slots of a UI-format workflow."""

from __future__ import annotations

from typing import Any

from app.domain.ui_widgets import patch_ui_graph, widget_slots

NOISE_INFO: dict[str, Any] = {
    "input": {
        "required": {
            "image": ["IMAGE"],
            "seed": ["INT", {"default": 0, "control_after_generate": True}],
            "strength": ["FLOAT", {"default": 0.5}],
        },
        "optional": {"mask": ["MASK"], "note": ["STRING", {"forceInput": True}]},
    },
    "input_order": {"required": ["image", "seed", "strength"], "optional": ["mask", "note"]},
    "output": ["IMAGE"],
}
OBJECT_INFO = {"ImageAddNoise": NOISE_INFO}
PROMPT = {
    "2": {
        "class_type": "ImageAddNoise",
        "inputs": {"image": ["1", 0], "seed": 77, "strength": 0.25},
    }
}


def ui_graph(widgets_values: object, node_type: str = "ImageAddNoise") -> dict[str, Any]:
    node = {"id": 2, "type": node_type, "widgets_values": widgets_values}
    return {"last_node_id": 2, "nodes": [node], "links": []}


def test_widget_slots_follow_input_order_with_a_control_slot_after_the_seed() -> None:
    assert widget_slots(NOISE_INFO) == ["seed", None, "strength"]


def test_legacy_seed_names_get_a_control_slot_without_the_option() -> None:
    info = {"input": {"required": {"noise_seed": ["INT", {}], "cfg": ["FLOAT", {}]}}}
    assert widget_slots(info) == ["noise_seed", None, "cfg"]


def test_bound_inputs_take_the_run_values_and_the_control_slot_is_kept() -> None:
    patched = patch_ui_graph(
        ui_graph([0, "randomize", 0.5]), PROMPT, [("2", "seed"), ("2", "strength")], OBJECT_INFO
    )
    assert patched["nodes"][0]["widgets_values"] == [77, "randomize", 0.25]


def test_only_the_named_inputs_are_written() -> None:
    patched = patch_ui_graph(ui_graph([0, "fixed", 0.5]), PROMPT, [("2", "seed")], OBJECT_INFO)
    assert patched["nodes"][0]["widgets_values"] == [77, "fixed", 0.5]


def test_the_source_graph_is_not_modified() -> None:
    source = ui_graph([0, "fixed", 0.5])
    patch_ui_graph(source, PROMPT, [("2", "seed")], OBJECT_INFO)
    assert source["nodes"][0]["widgets_values"] == [0, "fixed", 0.5]


def test_a_node_whose_slots_cannot_be_derived_is_left_alone() -> None:
    # One slot more than object_info explains: some custom widget the mapping cannot place.
    odd = ui_graph([0, "fixed", 0.5, "extra"])
    patched = patch_ui_graph(odd, PROMPT, [("2", "seed")], OBJECT_INFO)
    assert patched == odd


def test_a_node_of_another_class_than_the_api_node_is_left_alone() -> None:
    other = ui_graph([0, "fixed", 0.5], node_type="ImageBlur")
    assert patch_ui_graph(other, PROMPT, [("2", "seed")], OBJECT_INFO) == other


def test_without_object_info_the_ui_graph_is_stored_unchanged() -> None:
    source = ui_graph([0, "fixed", 0.5])
    assert patch_ui_graph(source, PROMPT, [("2", "seed")], None) == source
