"""Settings derived from others: the worker pool's size."""

from __future__ import annotations

import pytest

from app.settings import Settings


@pytest.mark.parametrize(
    ("instances", "slots", "expected"),
    [
        ("http://gpu1:8188,http://gpu2:8188", 3, 8),  # 3 prompts + 1 ingesting per instance
        ("http://gpu1:8188#sdxl", 2, 3),
        ("", 3, 4),  # no instances configured: room for one
    ],
)
def test_the_worker_pool_has_a_process_per_slot_and_one_ingesting_per_instance(
    instances: str, slots: int, expected: int
) -> None:
    settings = Settings(comfy_instances=instances, instance_slots=slots)
    assert settings.worker_concurrency == expected
