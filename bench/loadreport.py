"""Turns `bench.loadgen` samples into the lines `bench.load` prints, targets beside numbers.

Latencies cover every request that was sent, errors included at the time they took (a timeout
counts as its deadline), so a percentile can never look better by leaving failures out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from bench.loadgen import LoadResult, Sample

STATUS_P99_S = 0.050
HEALTHZ_MAX_S = 1.0
NORMAL_PROBES = 10  # consecutive status probes that must answer 200 ...
NORMAL_LATENCY_S = 0.050  # ... each within this, for the API to count as back to normal
RECOVERY_S = 5.0
KEPT_UP_LATENESS_S = 0.020  # the generator's p99 lateness below which it kept its schedule
ROUTES = ("status", "runs page", "workflows")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of all values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def spread(samples: Sequence[Sample]) -> str:
    latencies = [s.latency_s for s in samples if s.latency_s is not None]
    if not latencies:
        return "no answers"
    return (
        f"p50 {ms(percentile(latencies, 0.5))}, p99 {ms(percentile(latencies, 0.99))}, "
        f"max {ms(max(latencies))}"
    )


def errors(samples: Sequence[Sample]) -> Counter[str]:
    return Counter(s.outcome for s in samples if s.outcome != "200")


def error_text(counts: Counter[str]) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in counts.most_common()) or "none"


def max_latency(samples: Sequence[Sample]) -> float:
    return max((s.latency_s for s in samples if s.latency_s is not None), default=math.inf)


def report_load(result: LoadResult, duration_s: float) -> Counter[str]:
    """Per-route latency, errors by kind, achieved rate and the generator's own lateness."""
    samples = result.samples
    for route in ROUTES:
        mine = [s for s in samples if s.route == route]
        print(f"  {route:<10} {len(mine):>6} requests: {spread(mine)}")
    counts = errors(samples)
    print(f"  errors by kind: {error_text(counts)}")
    sent = [s for s in samples if s.sent_s is not None]
    answered = sum(
        1
        for s in sent
        if s.outcome == "200" and s.sent_s is not None and s.latency_s is not None
        if s.sent_s + s.latency_s <= duration_s
    )
    print(
        f"  achieved: sent {len(sent) / duration_s:.1f} req/s of {len(samples) / duration_s:.1f} "
        f"scheduled; answered 200 within the phase {answered / duration_s:.1f} req/s"
    )
    late = [s.sent_s - s.due_s for s in sent if s.sent_s is not None]
    p99 = percentile(late, 0.99) if late else math.inf
    print(
        f"  generator: sent late by p50 {ms(percentile(late, 0.5) if late else math.inf)}, "
        f"p99 {ms(p99)}, max {ms(max(late, default=math.inf))}; CPU "
        f"{result.cpu_s / result.wall_s:.0%} of one core; kept its schedule "
        f"(p99 late < {ms(KEPT_UP_LATENESS_S)}): {'yes' if p99 < KEPT_UP_LATENESS_S else 'NO'}"
    )
    return counts


def report_steady(rate: float, seconds: float, load: LoadResult, probes: LoadResult) -> None:
    print(f"steady: {rate:.0f} req/s of mixed reads for {seconds:.0f} s, the sweep executing")
    counts = report_load(load, seconds)
    during = [s for s in probes.samples if s.due_s < seconds]
    after = [s for s in probes.samples if s.due_s >= seconds]
    print(f"  /healthz during: {spread(during)}; errors {error_text(errors(during))}")
    print(f"  /healthz after:  {spread(after)}; errors {error_text(errors(after))}")
    polls = [s for s in load.samples if s.route == "status"]
    print(f"  status, worst per 5 s: {timeline(polls, 5.0)}")
    status = [s.latency_s for s in load.samples if s.route == "status" and s.latency_s is not None]
    p99 = percentile(status, 0.99) if status else math.inf
    total = sum(counts.values())
    print(f"  target status p99 < {ms(STATUS_P99_S)}: {ms(p99)} {verdict(p99 < STATUS_P99_S)}")
    print(f"  target 0 errors: {total} {verdict(total == 0)}")


def back_to_normal_s(probes: Sequence[Sample], burst_end_s: float) -> float | None:
    """Time from the burst's end to the first of NORMAL_PROBES consecutive probes, sent after
    it, that each answered 200 within NORMAL_LATENCY_S; None if that never happened."""
    after = sorted((s for s in probes if s.due_s >= burst_end_s), key=lambda s: s.due_s)
    streak = 0
    for n, sample in enumerate(after):
        good = sample.outcome == "200" and (sample.latency_s or math.inf) < NORMAL_LATENCY_S
        streak = streak + 1 if good else 0
        if streak == NORMAL_PROBES:
            return max(0.0, after[n - NORMAL_PROBES + 1].due_s - burst_end_s)
    return None


def timeline(samples: Sequence[Sample], step_s: float) -> str:
    """The worst latency in each step_s window, by when requests were due."""
    buckets: dict[int, float] = {}
    for s in samples:
        slot = int(s.due_s // step_s)
        buckets[slot] = max(buckets.get(slot, 0.0), s.latency_s or math.inf)
    return ", ".join(f"{k * step_s:.0f}s {ms(v)}" for k, v in sorted(buckets.items()))


def report_burst(rate: float, seconds: float, load: LoadResult, probes: LoadResult) -> None:
    print(f"burst: {rate:.0f} req/s for {seconds:.0f} s, then watched")
    report_load(load, seconds)
    healthz = [s for s in probes.samples if s.route == "healthz"]
    status = [s for s in probes.samples if s.route == "status"]
    during = [s for s in healthz if s.due_s < seconds]
    after = [s for s in healthz if s.due_s >= seconds]
    print(f"  /healthz during the burst: {spread(during)}; errors {error_text(errors(during))}")
    print(f"  /healthz after the burst:  {spread(after)}; errors {error_text(errors(after))}")
    print(f"  status probe (10/s), worst per 5 s: {timeline(status, 5.0)}")
    worst = max_latency(healthz)
    healthy = worst <= HEALTHZ_MAX_S and not errors(healthz)
    print(
        f"  target /healthz within {ms(HEALTHZ_MAX_S)} throughout: max during the burst "
        f"{ms(max_latency(during))}, after {ms(max_latency(after))}, errors "
        f"{sum(errors(healthz).values())} {verdict(healthy)}"
    )
    recovery = back_to_normal_s(status, seconds)
    shown = f"{recovery:.2f} s" if recovery is not None else "not within the watch"
    ok = recovery is not None and recovery <= RECOVERY_S
    print(
        f"  target back to normal ({NORMAL_PROBES} consecutive status probes 200 under "
        f"{ms(NORMAL_LATENCY_S)}) within {RECOVERY_S:.0f} s of the burst's end: {shown} "
        f"{verdict(ok)}"
    )
