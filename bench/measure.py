"""One measured run, driver or sweep: its makespan, the CPU each component used meanwhile,
and how loaded the shared machine was."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

from bench.processes import machine_ticks
from bench.sweep_client import SweepTiming
from bench.system import System


@dataclass(frozen=True)
class Measured:
    makespan_s: float
    timing: SweepTiming | None  # None for the driver
    cpu_s: dict[str, float]  # component → CPU seconds during the run
    load_1m: float  # os.getloadavg() at the end
    machine_busy: float  # share of all cores busy during the run


def measure(system: System, run: Callable[[], float | SweepTiming]) -> Measured:
    cpu_before, ticks_before, self_before = system.cpu_s(), machine_ticks(), _self_cpu_s()
    outcome = run()
    cpu_after, ticks_after, self_after = system.cpu_s(), machine_ticks(), _self_cpu_s()
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    # The bench process is the driver while the driver runs, and only watches the database
    # while a sweep runs.
    cpu["bench"] = self_after - self_before
    busy = (ticks_after[0] - ticks_before[0]) / max(1, ticks_after[1] - ticks_before[1])
    if isinstance(outcome, SweepTiming):
        return Measured(outcome.makespan_s, outcome, cpu, os.getloadavg()[0], busy)
    return Measured(outcome, None, cpu, os.getloadavg()[0], busy)


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
