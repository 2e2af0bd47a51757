"""The demo sweep `make run` submits and follows over HTTP, as any client would.

Following is patient: a slow or failed answer from the API (it shares two cores with the
worker and the stand-ins) is retried, never fatal. Between polls it asks `check` whether the
processes it depends on still run, so a dead worker is reported instead of waited on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

DEMO_SWEEP = {
    "workflow": "demo-noise",
    "base": {"width": 256, "height": 256, "color": 3355443, "blur_radius": 9},
    "axes": [
        {"param": "sigma", "values": "0.5-4.5 (+2)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "seeds": {"count": 2, "start": 100},
}
FINAL_STATUSES = ("succeeded", "partial", "failed", "cancelled")
RETRY_PAUSE_S = 0.5


class ApiUnavailable(Exception):
    """The API gave no usable answer for longer than the caller was willing to wait."""


def request_patiently(
    client: httpx.Client,
    method: str,
    url: str,
    check: Callable[[], None],
    give_up_after_s: float = 120.0,
    **kwargs: Any,
) -> httpx.Response:
    """Retry transport errors and 5xx answers until give_up_after_s; 4xx are the caller's.

    Only safe for requests that may be repeated: a POST is retried only when it never
    reached the server (a refused connection)."""
    deadline = time.monotonic() + give_up_after_s
    repeatable = method.upper() in ("GET", "HEAD")
    while True:
        check()
        problem: str
        try:
            response = client.request(method, url, **kwargs)
        except httpx.ConnectError as error:
            problem = f"{type(error).__name__}"
        except httpx.TransportError as error:
            if not repeatable:
                raise
            problem = f"{type(error).__name__}"
        else:
            if response.status_code < 500:
                return response
            problem = f"HTTP {response.status_code}"
        if time.monotonic() > deadline:
            raise ApiUnavailable(f"{method} {url}: {problem} for {give_up_after_s:.0f} s")
        time.sleep(RETRY_PAUSE_S)


def follow_demo(
    base: str, key: str, check: Callable[[], None], say: Callable[[str], None]
) -> dict[str, Any] | None:
    """Submit the demo sweep, print each change of its status, return its final state."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        try:
            created = request_patiently(
                client, "POST", "/v1/sweeps", check, json=DEMO_SWEEP, timeout=120
            )
        except httpx.TransportError as error:
            # Sent but unanswered: it may exist, and a second submission would run it twice.
            say(
                f"the demo sweep's submission got no answer ({type(error).__name__}); "
                f"look for it at {base}/v1/sweeps"
            )
            return None
        created.raise_for_status()
        sweep_path = f"/v1/sweeps/{created.json()['id']}"
        shown = ""
        while True:
            sweep: dict[str, Any] = request_patiently(client, "GET", sweep_path, check).json()
            line = f"demo sweep: {sweep['status']} {sweep['progress']:.0%} {sweep['counts']}"
            if line != shown:
                say(line)
                shown = line
            if sweep["status"] in FINAL_STATUSES:
                break
            time.sleep(RETRY_PAUSE_S)
        sweep_url = f"{base}{sweep_path}"
        say(f"Demo: {sweep_url}")
        say(f"Grid: {sweep_url}/grid   (with the API key; pages: {sweep_url}/grids)")
        link = request_patiently(client, "GET", f"{sweep_path}/contact-sheet-link", check)
        if link.status_code == 200:
            say(f"Contact sheet: {base}{link.json()['url']}   (signed link, opens in a browser)")
        return sweep
