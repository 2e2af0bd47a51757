"""Settings derived from others and checked together: the worker pool's size, the lease and
the broker's visibility timeout."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.queue import make_celery
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


def test_the_broker_redelivers_only_after_the_longest_run_and_long_after_the_lease() -> None:
    settings = Settings()
    assert settings.visibility_timeout_s == 2 * 60 * 60  # an hour's run, then an hour's margin
    assert settings.visibility_timeout_s > settings.run_timeout_s
    assert settings.visibility_timeout_s > 100 * (settings.lease_s + settings.reconcile_interval_s)
    longer = Settings(run_timeout_s=5 * 3600)
    assert longer.visibility_timeout_s == 6 * 3600
    broker = make_celery(Settings(redis_url="redis://127.0.0.1:6379/0")).conf
    assert broker.broker_transport_options == {"visibility_timeout": 7200.0}


def test_a_lease_shorter_than_two_heartbeats_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"LEASE_S \(6\.0\).*HEARTBEAT_S \(5\.0\)"):
        Settings(lease_s=6)


def test_uvicorns_own_limit_sits_above_the_admission_line() -> None:
    with pytest.raises(ValidationError, match="API_LIMIT_CONCURRENCY"):
        Settings(api_concurrency=32, api_limit_concurrency=32)
    assert Settings(api_concurrency=32, api_limit_concurrency=33).api_limit_concurrency == 33
