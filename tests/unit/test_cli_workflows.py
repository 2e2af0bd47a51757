"""`comfy-sweep workflows draft`: a contract printed from a workflow file, offline."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from app.cli import cli

ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO = ROOT / "tests" / "fixtures" / "object_info.json"


def test_draft_prints_the_contract_of_a_ui_workflow(tmp_path: Path) -> None:
    api_graph = tmp_path / "graph.api.json"
    result = CliRunner().invoke(
        cli,
        [
            "workflows",
            "draft",
            str(ROOT / "tests" / "fixtures" / "ui" / "sd15-hires-fix.json"),
            "--object-info",
            str(OBJECT_INFO),
            "--api-graph",
            str(api_graph),
        ],
    )
    assert result.exit_code == 0, result.output
    contract = json.loads(result.stdout)
    assert contract["title"] == "sd15-hires-fix"
    assert contract["properties"]["seed"]["x-comfy"] == [
        {"node": "5", "input": "seed"},
        {"node": "7", "input": "seed"},
    ]
    shipped = json.loads((ROOT / "workflows" / "sd15-hires-fix.api.json").read_text("utf-8"))
    converted = json.loads(api_graph.read_text("utf-8"))
    assert {k: v["inputs"] for k, v in converted.items()} == {
        k: v["inputs"] for k, v in shipped.items()
    }


def test_draft_names_an_unknown_node_and_fails(tmp_path: Path) -> None:
    graph = json.loads((ROOT / "workflows" / "demo-noise.api.json").read_text("utf-8"))
    graph["3"]["class_type"] = "FancyBlur"
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph), "utf-8")
    result = CliRunner().invoke(
        cli, ["workflows", "draft", str(path), "--object-info", str(OBJECT_INFO)]
    )
    assert result.exit_code == 1
    assert "at 3/class_type" in result.stderr
    assert "FancyBlur" in result.stderr


def test_draft_without_specs_or_a_comfyui_says_so(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    path.write_text("{}", "utf-8")
    result = CliRunner().invoke(
        cli, ["workflows", "draft", str(path), "--comfy-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2
    assert "--object-info" in result.stderr
