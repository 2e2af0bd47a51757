"""UI-format workflows (as saved from ComfyUI's menu) converted to the API format.

tests/fixtures/ui holds the five shipped workflows in the UI format, three as older frontends
save them (only linked inputs listed) and two as newer ones do (every widget listed as an
input too); the KSampler of sd15-txt2img was checked by hand against ComfyUI's default graph
(`[seed, "randomize", 20, 8, "euler", "normal", 1]`, links as `[id, from, slot, to, slot, type]`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app.domain.problems import SweepRejected
from app.domain.ui_format import is_ui_format, ui_to_api

ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO: dict[str, Any] = json.loads(
    (ROOT / "tests" / "fixtures" / "object_info.json").read_text(encoding="utf-8")
)
WORKFLOW_NAMES = sorted(path.stem for path in (ROOT / "tests" / "fixtures" / "ui").glob("*.json"))


def _ui(name: str) -> dict[str, Any]:
    text = (ROOT / "tests" / "fixtures" / "ui" / f"{name}.json").read_text(encoding="utf-8")
    ui: dict[str, Any] = json.loads(text)
    return ui


def _api(name: str) -> dict[str, Any]:
    text = (ROOT / "workflows" / f"{name}.api.json").read_text(encoding="utf-8")
    api: dict[str, Any] = json.loads(text)
    return api


def _node(ui: dict[str, Any], node_id: int) -> dict[str, Any]:
    node: dict[str, Any] = next(n for n in ui["nodes"] if n["id"] == node_id)
    return node


def _rejection(ui: dict[str, Any]) -> SweepRejected:
    with pytest.raises(SweepRejected) as caught:
        ui_to_api(ui, OBJECT_INFO)
    return caught.value


def test_all_five_fixtures_cover_the_shipped_workflows() -> None:
    shipped = sorted(p.name.removesuffix(".api.json") for p in (ROOT / "workflows").iterdir())
    assert shipped == WORKFLOW_NAMES


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_ui_format_converts_to_the_shipped_api_graph(name: str) -> None:
    ui = _ui(name)
    assert is_ui_format(ui)
    converted = ui_to_api(ui, OBJECT_INFO)
    expected = _api(name)
    assert not is_ui_format(expected)
    assert {k: (v["class_type"], v["inputs"]) for k, v in converted.items()} == {
        k: (v["class_type"], v["inputs"]) for k, v in expected.items()
    }
    assert converted["1"]["_meta"]["title"] == expected["1"]["_meta"]["title"]


def test_a_reroute_is_followed_to_its_source() -> None:
    ui = _ui("sd15-txt2img")
    # VAE from the checkpoint (link 10) now runs through reroute 20.
    ui["nodes"].append(
        {
            "id": 20,
            "type": "Reroute",
            "mode": 0,
            "inputs": [{"name": "", "type": "*", "link": 10}],
            "outputs": [{"name": "", "type": "VAE", "links": [30]}],
        }
    )
    ui["links"][9] = [10, 1, 2, 20, 0, "VAE"]
    ui["links"].append([30, 20, 0, 7, 1, "VAE"])
    _node(ui, 7)["inputs"][1]["link"] = 30
    converted = ui_to_api(ui, OBJECT_INFO)
    assert converted["7"]["inputs"]["vae"] == ["1", 2]
    assert "20" not in converted


def test_a_bypassed_node_hands_on_its_inputs_of_the_same_type() -> None:
    ui = _ui("sd15-txt2img")
    _node(ui, 2)["mode"] = 4  # the LoRA loader
    converted = ui_to_api(ui, OBJECT_INFO)
    assert "2" not in converted
    assert converted["6"]["inputs"]["model"] == ["1", 0]
    assert converted["3"]["inputs"]["clip"] == ["1", 1]
    assert converted["4"]["inputs"]["clip"] == ["1", 1]


def test_a_bypassed_node_with_nothing_to_hand_on_is_named() -> None:
    ui = _ui("demo-noise")
    _node(ui, 1)["mode"] = 4  # EmptyImage has no IMAGE input
    problems = _rejection(ui).problems
    assert problems[0].loc == ("graph", "nodes", 0, "mode")
    assert problems[0].type == "bypass_without_input"
    assert "node 1" in problems[0].msg


def test_a_muted_node_is_left_out_with_its_links() -> None:
    ui = _ui("sd15-txt2img")
    _node(ui, 2)["mode"] = 2
    converted = ui_to_api(ui, OBJECT_INFO)
    assert "2" not in converted
    assert "model" not in converted["6"]["inputs"]
    assert "clip" not in converted["3"]["inputs"]


def test_a_primitive_node_value_is_written_into_its_target() -> None:
    ui = _ui("sdxl-base-refiner")
    ui["nodes"].append(
        {
            "id": 30,
            "type": "PrimitiveNode",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "INT", "type": "INT", "links": [40, 41], "widget": {"name": "x"}}],
            "widgets_values": [1234, "fixed"],
        }
    )
    ui["links"] += [[40, 30, 0, 8, 2, "INT"], [41, 30, 0, 9, 2, "INT"]]
    for node_id in (8, 9):
        seed_input = next(i for i in _node(ui, node_id)["inputs"] if i["name"] == "noise_seed")
        seed_input["link"] = 40 if node_id == 8 else 41
    converted = ui_to_api(ui, OBJECT_INFO)
    assert converted["8"]["inputs"]["noise_seed"] == 1234
    assert converted["9"]["inputs"]["noise_seed"] == 1234
    assert "30" not in converted


def test_notes_are_dropped() -> None:
    ui = _ui("demo-noise")
    ui["nodes"].append({"id": 9, "type": "Note", "mode": 0, "widgets_values": ["hello"]})
    ui["nodes"].append({"id": 10, "type": "MarkdownNote", "mode": 0, "widgets_values": ["# hi"]})
    assert set(ui_to_api(ui, OBJECT_INFO)) == {"1", "2", "3", "4"}


def test_the_upload_widget_of_load_image_is_skipped() -> None:
    ui = {
        "nodes": [
            {"id": 1, "type": "LoadImage", "mode": 0, "widgets_values": ["cat.png", "image"]},
            {
                "id": 2,
                "type": "ImageBlur",
                "mode": 0,
                "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
                "widgets_values": [3, 0.5],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
    }
    assert ui_to_api(ui, OBJECT_INFO) == {
        "1": {
            "inputs": {"image": "cat.png"},
            "class_type": "LoadImage",
            "_meta": {"title": "LoadImage"},
        },
        "2": {
            "inputs": {"blur_radius": 3, "sigma": 0.5, "image": ["1", 0]},
            "class_type": "ImageBlur",
            "_meta": {"title": "ImageBlur"},
        },
    }


def test_a_seed_saved_without_its_control_value_still_lines_up() -> None:
    ui = _ui("sd15-txt2img")
    _node(ui, 6)["widgets_values"] = [5, 20, 7.0, "euler", "normal", 1.0]
    assert ui_to_api(ui, OBJECT_INFO)["6"]["inputs"]["steps"] == 20


def test_a_group_node_is_refused_by_name() -> None:
    ui = copy.deepcopy(_ui("demo-noise"))
    ui["extra"]["groupNodes"] = {"Blur twice": {"nodes": [], "links": []}}
    _node(ui, 3)["type"] = "workflow>Blur twice"
    (problem,) = _rejection(ui).problems
    assert problem.loc == ("graph", "nodes", 2, "type")
    assert problem.type == "unsupported_group_node"
    assert "node 3" in problem.msg
    assert "Blur twice" in problem.msg


def test_a_subgraph_is_refused_by_name() -> None:
    ui = _ui("demo-noise")
    subgraph_id = "6c1f2a3b-0000-4000-8000-000000000001"
    ui["definitions"] = {"subgraphs": [{"id": subgraph_id, "name": "Blur", "nodes": []}]}
    _node(ui, 3)["type"] = subgraph_id
    (problem,) = _rejection(ui).problems
    assert problem.type == "unsupported_subgraph"
    assert "node 3" in problem.msg


def test_an_unknown_node_type_is_named() -> None:
    ui = _ui("demo-noise")
    _node(ui, 3)["type"] = "FancyBlur"
    (problem,) = _rejection(ui).problems
    assert problem.loc == ("graph", "nodes", 2, "type")
    assert problem.type == "unknown_node_class"
    assert "FancyBlur" in problem.msg


def test_a_link_missing_from_links_is_named() -> None:
    ui = _ui("demo-noise")
    _node(ui, 3)["inputs"][0]["link"] = 99
    (problem,) = _rejection(ui).problems
    assert problem.loc == ("graph", "nodes", 2, "inputs", 0, "link")
    assert problem.type == "invalid_link"
