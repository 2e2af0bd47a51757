"""Reading the registered workflows and their contracts."""

from __future__ import annotations

from fastapi.testclient import TestClient

SHIPPED = {"demo-noise", "sd15-txt2img", "sdxl-base-refiner", "sd15-hires-fix", "flux-txt2img"}


def test_every_shipped_workflow_is_listed_as_global(client: TestClient) -> None:
    page = client.get("/v1/workflows").json()
    # Other tests of this session may register global workflows too: shipped ones are a subset.
    scopes = {w["name"]: w["scope"] for w in page["items"]}
    assert {name: scopes.get(name) for name in SHIPPED} == dict.fromkeys(SHIPPED, "global")
    assert page["total"] == len(page["items"])


def test_a_workflow_shows_each_parameter_with_type_bounds_and_default(client: TestClient) -> None:
    workflow = client.get("/v1/workflows/demo-noise").json()
    parameters = {p["name"]: p for p in workflow["parameters"]}
    assert set(parameters) == {
        "width",
        "height",
        "color",
        "seed",
        "strength",
        "blur_radius",
        "sigma",
    }
    blur = parameters["blur_radius"]
    assert (blur["type"], blur["minimum"], blur["maximum"]) == ("integer", 1, 31)
    assert blur["default"] is not None
    assert workflow["json_schema"]["$schema"].endswith("2020-12/schema")


def test_enums_are_listed(client: TestClient) -> None:
    workflow = client.get("/v1/workflows/sd15-txt2img").json()
    sampler = next(p for p in workflow["parameters"] if p["name"] == "sampler")
    assert "euler" in sampler["enum"]


def test_an_unknown_workflow_is_not_found(client: TestClient) -> None:
    assert client.get("/v1/workflows/nope").status_code == 404
