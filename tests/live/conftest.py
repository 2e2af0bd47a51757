"""Live tests fail at once, with the reason, when COMFYUI_URL is set but does not answer,
instead of each waiting out its own timeout against a server that is not there."""

from __future__ import annotations

import os

import httpx
import pytest


@pytest.fixture(scope="session", autouse=True)
def comfyui_answers() -> None:
    url = os.environ.get("COMFYUI_URL", "").rstrip("/")
    if not url:
        return  # the tests are skipped
    try:
        httpx.get(f"{url}/system_stats", timeout=10).raise_for_status()
    except httpx.HTTPError as error:
        pytest.fail(f"COMFYUI_URL={url} does not answer GET /system_stats: {error!r}")
