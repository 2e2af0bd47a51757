"""The registry loads every shipped workflow with its contract, and refuses to start on any
broken file, naming the file and the place in it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.registry import RegistryError, Workflow, load_registry

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["demo-noise", "flux-txt2img", "sd15-hires-fix", "sd15-txt2img", "sdxl-base-refiner"]


# --- the shipped workflows -----------------------------------------------------------------


def test_the_shipped_workflows_load() -> None:
    registry = load_registry(ROOT / "workflows", ROOT / "params")
    assert registry.names() == SHIPPED
    assert [workflow.name for workflow in registry] == SHIPPED
    assert len(registry) == len(SHIPPED)


def test_a_workflow_carries_its_graph_contract_and_texts() -> None:
    workflow = load_registry(ROOT / "workflows", ROOT / "params").get("demo-noise")
    assert isinstance(workflow, Workflow)
    assert workflow.title == "Demo: noise and blur"
    assert workflow.description
    assert workflow.graph["2"]["class_type"] == "ImageAddNoise"
    assert workflow.contract.workflow == "demo-noise"
    assert list(workflow.contract.parameters) == [
        "width",
        "height",
        "color",
        "seed",
        "strength",
        "blur_radius",
        "sigma",
    ]


def test_an_unknown_name_is_none() -> None:
    registry = load_registry(ROOT / "workflows", ROOT / "params")
    assert registry.get("sd3") is None
    assert "sd3" not in registry
    assert "demo-noise" in registry


# --- broken files --------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the demo-noise pair, to break one way per test."""
    workflows, params = tmp_path / "workflows", tmp_path / "params"
    workflows.mkdir()
    params.mkdir()
    shutil.copy(ROOT / "workflows" / "demo-noise.api.json", workflows)
    shutil.copy(ROOT / "params" / "demo-noise.schema.json", params)
    return workflows, params


def graph_file(dirs: tuple[Path, Path]) -> Path:
    return dirs[0] / "demo-noise.api.json"


def schema_file(dirs: tuple[Path, Path]) -> Path:
    return dirs[1] / "demo-noise.schema.json"


def edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


def load_error(dirs: tuple[Path, Path]) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        load_registry(*dirs)
    return caught.value


def test_the_copied_pair_loads(dirs: tuple[Path, Path]) -> None:
    assert load_registry(*dirs).names() == ["demo-noise"]


def test_files_with_other_names_are_ignored(dirs: tuple[Path, Path]) -> None:
    (dirs[0] / "README.md").write_text("notes", encoding="utf-8")
    assert load_registry(*dirs).names() == ["demo-noise"]


@pytest.mark.parametrize("which", [graph_file, schema_file])
def test_invalid_json_names_the_file_and_line(
    dirs: tuple[Path, Path], which: Callable[[tuple[Path, Path]], Path]
) -> None:
    path = which(dirs)
    path.write_text('{\n  "a": 1,\n  "b": \n}\n', encoding="utf-8")
    error = load_error(dirs)
    assert (error.path, error.line) == (path, 4)
    assert str(error).startswith(f"{path}:4: invalid JSON")


GraphChange = Callable[[dict[str, Any]], object]


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        pytest.param(
            lambda g: g["1"].pop("class_type"), "/1/class_type", "class_type", id="no-class"
        ),
        pytest.param(
            lambda g: g["1"].update(class_type=""), "/1/class_type", "class_type", id="empty-class"
        ),
        pytest.param(lambda g: g["1"].pop("inputs"), "/1/inputs", "inputs", id="no-inputs"),
        pytest.param(lambda g: g["1"].update(inputs=[]), "/1/inputs", "inputs", id="list-inputs"),
        pytest.param(lambda g: g.update({"1": "EmptyImage"}), "/1", "object", id="node-not-object"),
        pytest.param(lambda g: g.update(nodes=[], links=[]), "", "UI format", id="ui-format"),
        pytest.param(
            lambda g: g["2"]["inputs"].update(image=["9", 0]),
            "/2/inputs/image",
            "'9'",
            id="dangling-link",
        ),
    ],
)
def test_a_graph_not_in_api_format_is_refused(
    dirs: tuple[Path, Path], change: GraphChange, pointer: str, message: str
) -> None:
    edit(graph_file(dirs), change)
    error = load_error(dirs)
    assert (error.path, error.pointer) == (graph_file(dirs), pointer)
    assert message in error.message
    assert str(graph_file(dirs)) in str(error)


@pytest.mark.parametrize("document", ["[]", "{}"])
def test_an_empty_or_non_object_graph_is_refused(dirs: tuple[Path, Path], document: str) -> None:
    graph_file(dirs).write_text(document, encoding="utf-8")
    error = load_error(dirs)
    assert (error.path, error.pointer) == (graph_file(dirs), "")


def bind_seed(node: str, input_name: str) -> GraphChange:
    return lambda s: s["properties"]["seed"].update(
        {"x-comfy": [{"node": node, "input": input_name}]}
    )


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        pytest.param(
            lambda s: s["properties"]["seed"].update(minimum="zero"),
            "/properties/seed/minimum",
            "not a valid JSON Schema",
            id="not-compiling",
        ),
        pytest.param(
            lambda s: s["properties"]["seed"].pop("x-comfy"),
            "/properties/seed/x-comfy",
            "binding",
            id="no-bindings",
        ),
        pytest.param(
            lambda s: s.pop("additionalProperties"), "/additionalProperties", "false", id="open"
        ),
        pytest.param(
            lambda s: s["properties"]["seed"].update(default=-1),
            "/properties/seed/default",
            "below the minimum",
            id="bad-default",
        ),
        pytest.param(
            bind_seed("9", "seed"), "/properties/seed/x-comfy/0/node", "'9'", id="missing-node"
        ),
        pytest.param(
            bind_seed("2", "sed"), "/properties/seed/x-comfy/0/input", "'sed'", id="missing-input"
        ),
        pytest.param(
            bind_seed("2", "image"), "/properties/seed/x-comfy/0/input", "link", id="link-input"
        ),
    ],
)
def test_a_schema_that_cannot_drive_the_graph_is_refused(
    dirs: tuple[Path, Path], change: GraphChange, pointer: str, message: str
) -> None:
    edit(schema_file(dirs), change)
    error = load_error(dirs)
    assert (error.path, error.pointer) == (schema_file(dirs), pointer)
    assert message in error.message
    assert str(error).startswith(f"{schema_file(dirs)} at {pointer}: ")


def test_a_workflow_without_a_schema_is_refused(dirs: tuple[Path, Path]) -> None:
    schema_file(dirs).unlink()
    error = load_error(dirs)
    assert error.path == graph_file(dirs)
    assert "demo-noise.schema.json" in error.message


def test_a_schema_without_a_workflow_is_refused(dirs: tuple[Path, Path]) -> None:
    graph_file(dirs).unlink()
    error = load_error(dirs)
    assert error.path == schema_file(dirs)
    assert "demo-noise.api.json" in error.message


@pytest.mark.parametrize("name", ["Demo", "demo_noise", "-demo", "demo.noise"])
def test_a_workflow_name_must_be_lowercase_words_and_hyphens(
    dirs: tuple[Path, Path], name: str
) -> None:
    renamed = dirs[0] / f"{name}.api.json"
    graph_file(dirs).rename(renamed)
    shutil.copy(schema_file(dirs), dirs[1] / f"{name}.schema.json")
    error = load_error(dirs)
    assert error.path == renamed
    assert "[a-z0-9][a-z0-9-]*" in error.message


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    error = load_error((tmp_path / "nowhere", tmp_path))
    assert error.path == tmp_path / "nowhere"
