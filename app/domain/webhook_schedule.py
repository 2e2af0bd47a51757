"""When a webhook delivery is tried again: a fixed schedule of waits after each failure.

The default follows Standard Webhooks (Svix): the first attempt at once, then after 5 s,
5 min, 30 min, 2 h, 5 h, 10 h and 10 h, about 27.6 hours in all, so a receiver that is down
for a day still gets every event. After the last wait's attempt fails, the delivery fails.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_RETRY_WAITS_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


def parse_retry_waits(text: str) -> tuple[float, ...]:
    """`"5, 300, 1800"` → (5.0, 300.0, 1800.0): seconds to wait after each failed attempt."""
    try:
        waits = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of seconds") from None
    if any(wait < 0 or wait != wait for wait in waits):
        raise ValueError(f"{text!r} has a negative or NaN wait")
    return waits


def wait_before_retry(failed_attempts: int, waits: Sequence[float]) -> float | None:
    """Seconds until the next attempt after `failed_attempts` failures in a row, or None when
    the schedule is spent and the delivery has failed for good."""
    if failed_attempts < 1:
        raise ValueError("wait_before_retry counts failures from 1")
    if failed_attempts > len(waits):
        return None
    return waits[failed_attempts - 1]


def max_attempts(waits: Sequence[float]) -> int:
    return len(waits) + 1
