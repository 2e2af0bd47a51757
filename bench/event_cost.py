"""What writing the event log costs: one commit with and without it, measured side by side.

Issue #15's target: "event writing adds under 10 % to the execution bench's worker CPU per
run, and the makespan ratio stays where it is". The baseline is this checkout's HEAD with
`app.stores.events.record` made to drop its events, and nothing else changed; the other tree
is HEAD as it is. Both are exported from git into temporary trees and measured in the same run:

1. worker CPU per run with a zero-work stand-in (`bench.paired`: both systems up at once,
   each holding `--backlog` queued runs, sweeps alternating between them);
2. the makespan ratio of `bench.execution` (100 ms sampling, comfy-sweep ÷ the direct driver
   on the same stand-ins), rounds alternating between the two trees' systems.

    python -m bench.event_cost [--rounds 5] [--runs 200] [--backlog 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tarfile
import tempfile
from contextlib import ExitStack
from io import BytesIO
from pathlib import Path

from bench import paired, processes
from bench.execution import SAMPLING, ZERO_WORK, Bench
from bench.sweep_client import SweepClient
from bench.system import running_system

ADDED_TARGET_PCT = 10.0
EVENTS_MODULE = Path("app/stores/events.py")
# Appended to the baseline's module: the name is looked up on the module at every call, so
# every recorded event is dropped, and with none pending no commit writes anything.
DROP_EVENTS = """

def record(session: Session, *events: NewEvent) -> None:  # bench.event_cost: no event log
    return None
"""


def export_head(dest: Path, *, drop_events: bool) -> Path:
    """HEAD's files in `dest` (uncommitted changes are not measured), optionally without the
    event log's writes."""
    root = Path(processes.PROJECT_ROOT)  # type: ignore[attr-defined]
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=root, check=True, capture_output=True
    ).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    if drop_events:
        module = dest / EVENTS_MODULE
        source = module.read_text()
        if "\ndef record(session: Session, *events: NewEvent) -> None:" not in source:
            raise SystemExit(f"{EVENTS_MODULE} has no record() to replace: update {__name__}")
        module.write_text(source + DROP_EVENTS)
    return dest


def cpu_per_run(trees: list[Path], rounds: int, runs: int, backlog: int, tmp: Path) -> None:
    results: dict[Path, list[paired.Sample]] = {tree: [] for tree in trees}
    with ExitStack() as stack:
        benches = [
            paired.start(stack, tmp / f"cpu{n}", tree, ZERO_WORK) for n, tree in enumerate(trees)
        ]
        for bench in benches:
            paired.queue_backlog(bench, backlog)
            bench.run_sweep(bench.seeds(96))  # warm-up: each worker process's one-time costs
        for number in range(1, rounds + 1):
            order = list(zip(trees, benches, strict=True))
            for tree, bench in order if number % 2 else reversed(order):
                measured = paired.sample(bench, runs)
                results[tree].append(measured)
                print(
                    f"  round {number} {tree.name}: worker {measured.worker_ms:.2f} ms/run "
                    f"(with API and reconciler {measured.service_ms:.2f}) "
                    f"at load {measured.load:.2f}"
                )
    paired.report(results, ADDED_TARGET_PCT)


def makespan_ratios(trees: list[Path], rounds: int, runs: int, tmp: Path) -> None:
    ratios: dict[Path, list[float]] = {tree: [] for tree in trees}
    with ExitStack() as stack:
        benches = []
        for n, tree in enumerate(trees):
            os.environ["PYTHONPATH"] = str(tree)  # as `paired.start`: processes import the tree
            processes.PROJECT_ROOT = tree  # type: ignore[attr-defined]
            system = stack.enter_context(
                running_system(tmp / f"makespan{n}", 4, SAMPLING.standin_args)
            )
            bench = Bench(system, stack.enter_context(SweepClient(system)), SAMPLING)
            bench.run_sweep(bench.seeds(48))  # warm-up, as bench.execution's
            benches.append(bench)
        for number in range(1, rounds + 1):
            order = list(zip(trees, benches, strict=True))
            for tree, bench in order if number % 2 else reversed(order):
                done = bench.round(number, runs)
                ratios[tree].append(done.ratio)
                print(
                    f"  round {number} {tree.name}: driver {done.driver.makespan_s:.2f} s, "
                    f"comfy-sweep {done.sweep.makespan_s:.2f} s, ratio {done.ratio:.3f} "
                    f"at load {done.sweep.load_1m:.2f}"
                )
    for tree, values in ratios.items():
        print(
            f"{tree.name}: makespan ratio median {statistics.median(values):.3f} "
            f"(rounds: {', '.join(f'{v:.3f}' for v in values)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=10_000, help="queued runs left waiting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="comfy-sweep-event-cost-") as name:
        tmp = Path(name)
        trees = [
            export_head(tmp / "without-events", drop_events=True),
            export_head(tmp / "with-events", drop_events=False),
        ]
        print(f"worker CPU per run, zero work, {args.runs}-run sweeps, backlog {args.backlog}")
        cpu_per_run(trees, args.rounds, args.runs, args.backlog, tmp)
        print(f"makespan ÷ direct driver, 100 ms sampling, {args.runs} runs on 4 stand-ins")
        makespan_ratios(trees, args.rounds, args.runs, tmp)


if __name__ == "__main__":
    main()
