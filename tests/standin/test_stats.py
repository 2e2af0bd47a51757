"""The stand-in's own counters in `/system_stats` (key `standin`), which benchmarks read."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.standin.wire import txt2img_graph, unique, wait_history
from tests.support.standin_process import Standin

pytestmark = pytest.mark.timeout(60)


def counters(http: httpx.Client) -> dict[str, Any]:
    return dict(http.get("/system_stats").json()["standin"])


def run_one(http: httpx.Client, seed: int) -> None:
    response = http.post("/prompt", json={"prompt": txt2img_graph(unique("stats"), seed=seed)})
    assert response.status_code == 200, response.text
    wait_history(http, response.json()["prompt_id"])


def test_busy_and_idle_time_add_up_to_the_span_between_first_start_and_last_end(
    start_standin: Callable[..., Standin],
) -> None:
    standin = start_standin("--step-ms", "20")
    with httpx.Client(base_url=standin.base_url, timeout=10) as http:
        fresh = counters(http)
        assert fresh["busy_s"] == 0
        assert fresh["first_started_at"] is None

        run_one(http, seed=1)
        time.sleep(0.3)  # the queue runs dry: the instance idles
        run_one(http, seed=2)
        after = counters(http)

    assert after["prompts_executed"] == 2
    assert after["busy_s"] >= 2 * 6 * 0.020  # two prompts of 6 sampling steps
    assert 0.3 <= after["idle_between_s"] < 1.0
    span = after["last_finished_at"] - after["first_started_at"]
    assert span == pytest.approx(after["busy_s"] + after["idle_between_s"], abs=0.01)


def test_a_new_timing_window_starts_the_times_afresh_but_keeps_the_counts(
    start_standin: Callable[..., Standin],
) -> None:
    standin = start_standin()
    with httpx.Client(base_url=standin.base_url, timeout=10) as http:
        run_one(http, seed=1)
        time.sleep(0.2)
        run_one(http, seed=2)
        window = http.post("/standin/stats/window")
        assert window.status_code == 200
        reset = window.json()
        run_one(http, seed=3)
        after = counters(http)

    assert reset["busy_s"] == 0
    assert reset["idle_between_s"] == 0
    assert reset["first_started_at"] is None
    assert reset["last_finished_at"] is None
    assert reset["prompts_executed"] == 2  # fault ordinals are reckoned from the counts
    assert after["prompts_executed"] == 3
    assert after["idle_between_s"] == 0  # one prompt in the window: nothing between
    assert after["first_started_at"] is not None
    assert after["busy_s"] > 0
