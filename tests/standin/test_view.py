"""`GET /view`: streamed files with ComfyUI's content types and path guard."""

from __future__ import annotations

import httpx
import pytest

from tests.standin.wire import capture, demo_graph, output_image, submit, unique, wait_history
from tests.support.standin_process import Standin

pytestmark = pytest.mark.timeout(60)


def test_saved_and_preview_images_are_served(standin: Standin, http: httpx.Client) -> None:
    graph = demo_graph(f"views/{unique('saved')}")
    graph["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}}
    history = wait_history(http, submit(http, graph, "nobody"))
    saved, preview = output_image(history, "4"), output_image(history, "5")
    assert saved["subfolder"] == "views"
    assert preview["type"] == "temp"
    assert preview["filename"].startswith("ComfyUI_temp_")
    assert (standin.output_dir / saved["subfolder"] / saved["filename"]).is_file()
    expected = capture("get_view_headers")
    for image in (saved, preview):
        response = http.get("/view", params=image)
        assert response.status_code == expected["status"]
        assert response.headers["content-type"] == expected["headers"]["Content-Type"]
        assert response.content[:8] == bytes(expected["png_magic"])
        assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"filename": "../standin.log", "type": "output"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"filename": "nope.png", "subfolder": "", "type": "output"}, 404),
        ({"filename": "nope.png", "type": "sideways"}, 400),
        ({"filename": "standin.log", "subfolder": "..", "type": "output"}, 403),
        ({"type": "output"}, 404),
    ],
)
def test_path_guard(http: httpx.Client, params: dict[str, str], status: int) -> None:
    response = http.get("/view", params=params)
    assert response.status_code == status
    if status in (400, 404):
        expected = capture("get_view_traversal" if status == 400 else "get_view_missing")
        assert response.text == expected["text"]
