"""Execution benchmarks on ComfyUI stand-ins against a baseline measured in the same run.

The baseline is `bench.direct_driver`, a plain script feeding the same stand-ins the same
prompts over ComfyUI's API with the same queue depth per instance. Rounds alternate it with the
same sweep through comfy-sweep (API over HTTP, Celery worker, reconciler, Postgres, Redis),
in two modes:

1. 100 ms of simulated sampling per run (sd15-txt2img, 10 steps × 10 ms): makespan through
   comfy-sweep to the sweep's final status, grid included, ÷ the driver's (target ≤ 1.05);
2. zero work (demo-noise, 8×8 images, `--step-ms 0`): CPU of worker + API + reconciler per
   run (target ≤ 10 ms).

Then `bench.checkpoints`. Each line gives the machine's load: it is shared.

    make bench   # or: python -m bench.execution [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.registry import load_registry
from app.settings import PROJECT_ROOT
from bench import checkpoints, prompt_check
from bench.direct_driver import Graph, build_prompt, drive
from bench.measure import Measured, measure
from bench.sweep_client import SweepClient
from bench.system import System, running_system

MAKESPAN_TARGET = 1.05
CPU_TARGET_MS = 10.0
SERVICE = ("worker", "api", "reconciler")


@dataclass(frozen=True)
class Mode:
    name: str
    workflow: str
    base: dict[str, Any]
    standin_args: list[str] = field(default_factory=list)


SAMPLING = Mode(
    "100 ms sampling",
    "sd15-txt2img",
    {"steps": 10, "width": 64, "height": 64},
    # 10 steps × 10 ms: 100 ms of sampling per run; model loads made negligible.
    ["--step-ms", "10", "--checkpoint-load-ms", "1"],
)
ZERO_WORK = Mode(
    "zero work",
    "demo-noise",
    {"width": 8, "height": 8},
    ["--step-ms", "0", "--checkpoint-load-ms", "0"],
)


@dataclass(frozen=True)
class Round:
    driver: Measured
    sweep: Measured
    runs: int

    @property
    def ratio(self) -> float:
        return self.sweep.makespan_s / self.driver.makespan_s

    def service_cpu_ms(self) -> float:
        return sum(self.sweep.cpu_s[name] for name in SERVICE) / self.runs * 1000


class Bench:
    """One mode's system, with a seed counter so no two sweeps or driver batches repeat."""

    def __init__(self, system: System, client: SweepClient, mode: Mode) -> None:
        self.system, self.client, self.mode = system, client, mode
        self.next_seed = 1

    def seeds(self, runs: int) -> range:
        first, self.next_seed = self.next_seed, self.next_seed + runs
        return range(first, first + runs)

    def body(self, seeds: range) -> dict[str, Any]:
        values = f"{seeds[0]}-{seeds[-1]}"
        return {
            "workflow": self.mode.workflow,
            "base": self.mode.base,
            "axes": [{"param": "seed", "values": values}],
        }

    def prompts(self, seeds: range) -> list[Graph]:
        tag = f"direct/{seeds[0]}"
        return [
            build_prompt(self.mode.workflow, {**self.mode.base, "seed": s}, f"{tag}/{n:06d}")
            for n, s in enumerate(seeds)
        ]

    def run_driver(self, seeds: range) -> Measured:
        prompts, slots = self.prompts(seeds), self.system.settings.instance_slots
        return measure(self.system, lambda: drive(self.system.standins, prompts, slots).makespan_s)

    def run_sweep(self, seeds: range) -> Measured:
        return measure(self.system, lambda: self.client.run_sweep(self.body(seeds)))

    def round(self, number: int, runs: int) -> Round:
        seeds = self.seeds(runs)
        # The order alternates so that a drift in the machine's speed favours neither.
        if number % 2:
            driver, sweep = self.run_driver(seeds), self.run_sweep(seeds)
        else:
            sweep, driver = self.run_sweep(seeds), self.run_driver(seeds)
        return Round(driver, sweep, runs)

    def check_prompts(self, seeds: range) -> None:
        timing = self.client.run_sweep(self.body(seeds))
        differ = prompt_check.mismatches(
            self.mode.workflow, self.client.assignments(timing.sweep_id), self.prompts(seeds)
        )
        verdict = "identical" if differ == 0 else f"{differ} DIFFER"
        print(f"  driver prompts vs comfy-sweep's for {len(seeds)} runs: {verdict}")


def bench_mode(workdir: Path, mode: Mode, runs: int, rounds: int, instances: int) -> list[Round]:
    print(f"{mode.name}: {runs} runs on {instances} stand-ins, {rounds} rounds")
    with (
        running_system(workdir / mode.workflow, instances, mode.standin_args) as system,
        SweepClient(system) as client,
    ):
        bench = Bench(system, client, mode)
        # Warm-up: each worker process's one-time costs (imports, statements, connections)
        # and the stand-ins' first prompts; a long-running farm is past them.
        bench.check_prompts(bench.seeds(3 * instances * (system.settings.instance_slots + 1)))
        bench.run_driver(bench.seeds(3 * instances))
        done = []
        for number in range(1, rounds + 1):
            done.append(bench.round(number, runs))
            _print_round(number, done[-1])
    return done


def _print_round(number: int, done: Round) -> None:
    sweep, driver = done.sweep, done.driver
    grid = sweep.timing.grid_s if sweep.timing else 0.0
    status = sweep.timing.status if sweep.timing else "?"
    print(
        f"  round {number}: driver {driver.makespan_s:.2f} s, comfy-sweep {sweep.makespan_s:.2f} s"
        f" ({status}; grid step {grid:.2f} s), ratio {done.ratio:.3f}"
    )
    if sweep.timing is not None:
        # Where the ratio's excess lies: running the runs, or the grid step after them.
        runs_done, first_runs = sweep.timing.runs_done_s, sweep.timing.first_runs_s
        print(
            f"    last run recorded at {runs_done:.2f} s: "
            f"{runs_done / driver.makespan_s:.3f} of the driver's makespan before the grid step"
        )
        # The driver's clock starts at its first submission; the sweep's at its POST, so
        # each instance's first start (submission, expansion, claims) is part of its excess.
        starts = ", ".join(f"{at:.3f}" for at in first_runs)
        print(f"    each instance's first run started at {starts} s after the submission")
    for label, run in (("driver", driver), ("comfy-sweep", sweep)):
        per_run = ", ".join(f"{k} {v / done.runs * 1000:.2f}" for k, v in run.cpu_s.items())
        print(
            f"    {label:>11}: load {run.load_1m:.2f}, machine busy {run.machine_busy:.0%} of "
            f"{os.cpu_count()} cores; CPU ms/run: {per_run}"
        )
    print(f"    worker + API + reconciler: {done.service_cpu_ms():.2f} ms/run")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 runs, one round")
    args = parser.parse_args()
    runs, rounds = (40, 1) if args.quick else (200, 3)
    load_registry(PROJECT_ROOT / "workflows", PROJECT_ROOT / "params")  # fail early if broken
    with tempfile.TemporaryDirectory(prefix="comfy-sweep-bench-") as tmp:
        sampling = bench_mode(Path(tmp), SAMPLING, runs, rounds, instances=4)
        zero = bench_mode(Path(tmp), ZERO_WORK, runs, rounds, instances=4)
        ratio = statistics.median(r.ratio for r in sampling)
        cpu = statistics.median(r.service_cpu_ms() for r in zero)
        print(
            f"makespan comfy-sweep / direct driver (100 ms sampling): median {ratio:.3f} "
            f"(target <= {MAKESPAN_TARGET}) {_verdict(ratio <= MAKESPAN_TARGET)}"
        )
        print(
            f"worker + API + reconciler CPU per run (zero work): median {cpu:.2f} ms "
            f"(target <= {CPU_TARGET_MS:.0f} ms) {_verdict(cpu <= CPU_TARGET_MS)}"
        )
        checkpoints.bench_checkpoint_loads(Path(tmp))


if __name__ == "__main__":
    main()
