"""The metrics read from the database at scrape time: runs and sweeps by status, queue
depth per team and priority, and each instance's slots in use, health, drain and bench.

A handful of aggregate statements (`app.stores.farm_state`, none reads the runs table but
the partial index of running runs) in one short session, returned to the pool before the
scrape is written out. A database that does not answer gives `comfy_sweep_database_up 0`
and none of these gauges, never a failed scrape: the processes' own metrics still count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime

import sqlalchemy.exc
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utc_now
from app.domain.states import RunStatus, SweepStatus
from app.metrics.observed import instance_label
from app.settings import Settings
from app.stores import farm_state
from app.stores import instances as instance_store

log = logging.getLogger(__name__)

# Seconds the oldest due webhook delivery has waited (`webhook_outbox.oldest_due_age_s`).
WebhookLag = Callable[[Session, datetime], float | None]


class FarmCollector(Collector):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        webhook_lag: WebhookLag | None = None,
    ) -> None:
        self.sessions, self.settings = sessions, settings
        # WEBHOOK DELIVERY LAG: set to the outbox's "oldest pending delivery age" function
        # when webhooks land; until then the gauge is not exported.
        self.webhook_lag = webhook_lag

    def collect(self) -> Iterator[Metric]:
        try:
            families = self._read()
        except sqlalchemy.exc.SQLAlchemyError as error:
            log.warning("metrics_database_unreachable error=%s", type(error).__name__)
            families = []
        up = GaugeMetricFamily(
            "comfy_sweep_database_up", "Whether the scrape could read the database (1) or not."
        )
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        with self.sessions() as session:
            now = utc_now()
            families = [
                *_sweep_families(farm_state.sweep_tallies(session)),
                _queue_family(farm_state.queue_depths(session)),
                *self._instance_families(session, now),
            ]
            if self.webhook_lag is not None:
                families.append(_webhook_family(self.webhook_lag(session, now)))
        return families

    def _instance_families(self, session: Session, now: datetime) -> list[Metric]:
        configured = {config.url for config in self.settings.instances}
        gauges = {
            name: GaugeMetricFamily(f"comfy_sweep_instance_{name}", text, labels=["instance"])
            for name, text in _INSTANCE_GAUGES.items()
        }
        for row, prompts in instance_store.pool_with_prompts(session):
            if row.url not in configured:
                continue
            label = [instance_label(row.url)]
            benched = row.benched_until is not None and row.benched_until > now
            gauges["slots_in_use"].add_metric(label, prompts)
            gauges["slots"].add_metric(label, self.settings.instance_slots)
            gauges["healthy"].add_metric(label, int(row.checked_at is not None and row.healthy))
            gauges["drained"].add_metric(label, int(row.drained))
            gauges["benched"].add_metric(label, int(benched))
        return list(gauges.values())


_INSTANCE_GAUGES = {
    "slots_in_use": "Prompts of ours queued or executing on the instance now.",
    "slots": "Prompts of ours the instance may hold at once (INSTANCE_SLOTS).",
    "healthy": "1 if the reconciler's last check found it answering, else 0.",
    "drained": "1 if an admin drained it (no new runs), else 0.",
    "benched": "1 if benched after transport failures in a row, else 0.",
}


def _sweep_families(tallies: list[farm_state.SweepTally]) -> list[Metric]:
    sweeps = GaugeMetricFamily("comfy_sweep_sweeps", "Sweeps by status.", labels=["status"])
    runs = GaugeMetricFamily(
        "comfy_sweep_runs", "Runs by status, from the sweeps' counters.", labels=["status"]
    )
    # Every status appears, 0 when none: a series that vanishes breaks rate() and alerts.
    by_sweep_status = dict.fromkeys(map(str, SweepStatus), 0)
    by_run_status = dict.fromkeys(map(str, RunStatus), 0)
    for tally in tallies:
        by_sweep_status[tally.status] = tally.sweeps
        for status, count in tally.runs.items():
            by_run_status[status.value] += count
    for name, count in by_sweep_status.items():
        sweeps.add_metric([name], count)
    for name, count in by_run_status.items():
        runs.add_metric([name], count)
    return [sweeps, runs]


def _queue_family(depths: list[farm_state.QueueDepth]) -> Metric:
    family = GaugeMetricFamily(
        "comfy_sweep_queue_depth",
        "Queued runs claims may take now (started, not paused sweeps), per team and priority.",
        labels=["team", "priority"],
    )
    for depth in depths:
        family.add_metric([depth.team, str(depth.priority)], depth.queued)
    return family


def _webhook_family(lag_s: float | None) -> Metric:
    family = GaugeMetricFamily(
        "comfy_sweep_webhook_delivery_lag_seconds",
        "Age of the oldest webhook delivery not yet made; 0 when none is pending.",
    )
    family.add_metric([], lag_s or 0.0)
    return family
