"""The metrics processes observe as they work: runs finished and how long they took and
waited, model loads, instance idle time, API request latency.

Defined once here, with labels only, so in prometheus-client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR` set before the process starts) nothing is written to the
directory before a value is observed, and every Celery child, API worker and the reconciler
add to the same series. Labels never carry an instance URL (the scrape is unauthenticated by
default): an instance is named by its id from `GET /v1/instances`.

Files in the directory are named by host and process id, so containers sharing it (compose)
never collide. Each `observe_*` costs a few dictionary lookups and an mmap write: no I/O of its own.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from functools import cache

from prometheus_client import Counter, Histogram, values

from app.metrics.exposition import in_multiprocess_mode
from app.services.pool import instance_id


def _host_and_pid() -> str:
    # Containers sharing one directory (compose) each number their processes from 1: the
    # files are named by host and pid, so two processes never write the same file.
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


if in_multiprocess_mode():  # prometheus-client chose from the environment at its import
    values.ValueClass = values.MultiProcessValue(process_identifier=_host_and_pid)  # type: ignore[no-untyped-call]

# Runs take seconds to many minutes; a queue wait may last hours on a busy farm.
RUN_BUCKETS_S = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)
WAIT_BUCKETS_S = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600)
REQUEST_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RUN_DURATION = Histogram(
    "comfy_sweep_run_duration_seconds",
    "Time from a run attempt's start on an instance to its recorded outcome.",
    ["workflow", "instance"],
    buckets=RUN_BUCKETS_S,
)
QUEUE_WAIT = Histogram(
    "comfy_sweep_run_queue_wait_seconds",
    "Time from a run's queueing (submission or retry) to an attempt's start.",
    ["workflow", "instance"],
    buckets=WAIT_BUCKETS_S,
)
RUNS_FINISHED = Counter(
    "comfy_sweep_runs_finished",
    "Run attempts recorded, by outcome: succeeded, failed, or retried (queued again).",
    ["workflow", "instance", "outcome"],
)
MODEL_LOADS = Counter(
    "comfy_sweep_model_loads",
    "Runs started on an instance whose model differs from the last one routed there.",
    ["instance"],
)
INSTANCE_DEMAND = Counter(
    "comfy_sweep_instance_demand_seconds",
    "Seconds a serving instance was in the pool while runs were queued (reconciler samples).",
    ["instance"],
)
INSTANCE_IDLE = Counter(
    "comfy_sweep_instance_idle_seconds",
    "Part of the demand seconds during which the instance held none of our prompts.",
    ["instance"],
)
REQUEST_DURATION = Histogram(
    "comfy_sweep_http_request_duration_seconds",
    "API request latency by route template (never the raw path) and status class.",
    ["method", "route", "status"],
    buckets=REQUEST_BUCKETS_S,
)


@cache
def instance_label(url: str) -> str:
    """The instance's id in `GET /v1/instances`, remembered: a hash per run is not free."""
    return instance_id(url)


def observe_start(workflow: str, url: str, queued_at: datetime, started_at: datetime) -> None:
    wait = (started_at - queued_at).total_seconds()
    QUEUE_WAIT.labels(workflow, instance_label(url)).observe(max(0.0, wait))


def observe_outcome(
    workflow: str, url: str, outcome: str, started_at: datetime | None, now: datetime
) -> None:
    instance = instance_label(url)
    RUNS_FINISHED.labels(workflow, instance, outcome).inc()
    if started_at is not None:
        RUN_DURATION.labels(workflow, instance).observe(
            max(0.0, (now - started_at).total_seconds())
        )


def observe_model_load(url: str) -> None:
    MODEL_LOADS.labels(instance_label(url)).inc()


def observe_idle(url: str, demand_s: float, idle_s: float) -> None:
    instance = instance_label(url)
    INSTANCE_DEMAND.labels(instance).inc(demand_s)
    if idle_s:
        INSTANCE_IDLE.labels(instance).inc(idle_s)
