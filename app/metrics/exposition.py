"""One scrape: the processes' observed metrics and the database's gauges, in Prometheus
text format.

Where the processes' metrics come from:
- `PROMETHEUS_MULTIPROC_DIR` (the setting `prometheus_multiproc_dir`): every process that
  had the variable when it started writes its values there, and the scrape merges them
  (`MultiProcessCollector`), so Celery's prefork children, several API workers and the
  reconciler add up. Whoever starts the processes empties the directory first.
- This process's own registry, when it was not itself started in multiprocess mode (the
  API `make run` serves in the launcher's process, tests serving the app in-process).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def in_multiprocess_mode() -> bool:
    """Whether this process writes its metrics to the directory (decided when
    prometheus-client was first imported, from the environment)."""
    return values.ValueClass is not values.MutexValue


class _Observed(Collector):
    """The directory's metrics and, for a process not in multiprocess mode, its own, as one
    family per name: both may hold the same family (the API's requests here, the workers'
    runs there), and a family listed twice is refused by Prometheus's parser."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        sources: list[Iterable[Metric]] = []
        if self.directory is not None and self.directory.is_dir():
            # prometheus-client's multiprocess module is untyped.
            merged = MultiProcessCollector(None, path=str(self.directory))  # type: ignore[no-untyped-call]
            sources.append(merged.collect())  # type: ignore[no-untyped-call]
        if not in_multiprocess_mode():
            sources.append(REGISTRY.collect())
        yield from merge_families(family for source in sources for family in source)


def merge_families(families: Iterable[Metric]) -> list[Metric]:
    """Families of one name as one, the values of equal series added (a counter or a
    histogram bucket counted in two places); families without samples left out."""
    merged: dict[str, Metric] = {}
    for family in families:
        if not family.samples:
            continue
        into = merged.setdefault(
            family.name, Metric(family.name, family.documentation, family.type, family.unit)
        )
        into.samples.extend(family.samples)
    for family in merged.values():
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            totals[key] = totals.get(key, 0.0) + sample.value
        family.samples = []
        for (name, labels), value in totals.items():
            family.add_sample(name, dict(labels), value)
    return list(merged.values())


def scrape_registry(directory: Path | None, collectors: Iterable[Collector]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Observed(directory))
    for collector in collectors:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def prepare_directory(directory: Path) -> None:
    """Create the directory, or empty it of a previous start's files: counters left there
    by processes of another start would be added to this one's."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def runs_finished_by_instance(directory: Path | None) -> dict[tuple[str, str], int] | None:
    """(instance id, outcome) -> runs recorded, from the processes' counters; None when no
    directory is read, as this process alone records no runs."""
    if directory is None:
        return None
    counts: dict[tuple[str, str], int] = {}
    for family in _Observed(directory).collect():
        if family.name != "comfy_sweep_runs_finished":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["instance"], sample.labels["outcome"])
                counts[key] = counts.get(key, 0) + int(sample.value)
    return counts
