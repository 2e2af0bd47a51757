"""CPU per run of two or more code trees, measured side by side on a shared machine.

`bench.execution`'s zero-work CPU per run rises with the machine's load (on a 2-core VM shared
with other work, 29 ms/run quiet became 35-50 at load 7-15), so two trees measured one after
the other differ by more than most changes save. Here every tree gets its own system (API,
worker, reconciler, stand-ins: `bench.system`), all up at once, and sweeps alternate between
them round by round, the order reversed every other round, so load hits each tree alike.

    python -m bench.paired /path/to/tree-a /path/to/tree-b --rounds 5 --runs 200 [--mode sampling]

It ranks code trees against each other. The first tree is the baseline: the system without
the change, measured in the same run on the same machine, and each later tree's median
worker CPU per run is printed as a ratio to it. A verdict is printed only where a target
speaks of such a ratio: with `--added-target-pct`, issue #15's "event writing adds under
10 % to the execution bench's worker CPU per run", which holds only when the first tree is
the same code without event writing (`bench.event_cost` builds that pair) and only for zero
work. Issue #13's absolute target (at most 10 ms per run) is judged by `bench.execution`,
one system at a time; here every system shares the machine with the others, so its figures
only compare.

Claims are measured at the scale users reach: before any round, each system is given
`--backlog` queued runs (a paused sweep's, which no claim takes but every claim must look
past), not an empty queue.

A tree is a checkout of this repository (`git worktree add` or `git archive | tar -x`); its
processes import from it (`bench.processes` starts them in PROJECT_ROOT with `python -m`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.execution import SAMPLING, SERVICE, ZERO_WORK, Bench, Mode
from bench.sweep_client import SweepClient
from bench.system import running_system

MODES = {"zero-work": ZERO_WORK, "sampling": SAMPLING}


def start(stack: ExitStack, workdir: Path, tree: Path, mode: Mode) -> Bench:
    os.environ["PYTHONPATH"] = str(tree)
    # Where `spawn` starts `python -m`, so the system's processes import from the tree.
    processes.PROJECT_ROOT = tree  # type: ignore[attr-defined]
    system = stack.enter_context(running_system(workdir, 4, mode.standin_args))
    client = stack.enter_context(SweepClient(system))
    return Bench(system, client, mode)


@dataclass(frozen=True)
class Sample:
    worker_ms: float  # worker CPU per run
    service_ms: float  # worker + API + reconciler CPU per run
    load: float


def sample(bench: Bench, runs: int) -> Sample:
    """CPU per run over one sweep, and the machine's load meanwhile."""
    measured = bench.run_sweep(bench.seeds(runs))
    per_run_ms = 1000 / runs
    service = sum(measured.cpu_s[name] for name in SERVICE)
    return Sample(measured.cpu_s["worker"] * per_run_ms, service * per_run_ms, measured.load_1m)


def queue_backlog(bench: Bench, runs: int) -> None:
    """`runs` queued runs that stay queued: a paused sweep of them."""
    if runs <= 0:
        return
    body = {**bench.body(bench.seeds(runs)), "paused": True}
    response = bench.client.http.post("/v1/sweeps", json=body)
    if response.status_code != 201:
        raise SystemExit(f"backlog refused: {response.status_code} {response.text}")


def report(results: dict[Path, list[Sample]], added_target_pct: float | None = None) -> None:
    """Each tree's medians, and each later tree's worker CPU as a ratio to the first's,
    judged against `added_target_pct` when given (zero work only: see the docstring)."""
    baseline: float | None = None
    for tree, samples in results.items():
        worker = statistics.median(s.worker_ms for s in samples)
        service = [s.service_ms for s in samples]
        print(
            f"{tree}: worker + API + reconciler median {statistics.median(service):.2f} ms/run, "
            f"mean {statistics.mean(service):.2f}, min {min(service):.2f}; "
            f"worker alone median {worker:.2f}"
        )
        if baseline is None:
            baseline = worker
            continue
        added = (worker / baseline - 1) * 100
        ratio = f"{worker / baseline:.3f}x ({added:+.1f} %)"
        if added_target_pct is not None:
            verdict = "PASS" if added < added_target_pct else "MISS"
            ratio += f", target under +{added_target_pct:g} %: {verdict}"
        print(f"    worker CPU per run vs the first tree: {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="the first is the baseline")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=10_000, help="queued runs left waiting")
    parser.add_argument(
        "--added-target-pct",
        type=float,
        help="judge each ratio against this added share: issue #15's 10, when the first tree "
        "is the same code without event writing (zero work only)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="zero-work",
        help="the stand-ins' work per run: none (the CPU target's mode), or bench.execution's "
        "100 ms of simulated sampling, whose progress frames and larger images cost more",
    )
    args = parser.parse_args()
    mode = MODES[args.mode]
    if args.added_target_pct is not None and mode is not ZERO_WORK:
        parser.error("--added-target-pct: the target is stated for zero work")
    trees: list[Path] = [tree.resolve() for tree in args.trees]
    results: dict[Path, list[Sample]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="comfy-sweep-paired-") as tmp, ExitStack() as stack:
        benches = [start(stack, Path(tmp) / f"tree{n}", tree, mode) for n, tree in enumerate(trees)]
        for bench in benches:
            queue_backlog(bench, args.backlog)
            bench.run_sweep(bench.seeds(96))  # warm-up: each worker process's one-time costs
        for number in range(1, args.rounds + 1):
            order = list(zip(trees, benches, strict=True))
            for tree, bench in order if number % 2 else reversed(order):
                measured = sample(bench, args.runs)
                results[tree].append(measured)
                print(
                    f"round {number} {tree.name}: {measured.service_ms:.2f} ms/run "
                    f"(worker {measured.worker_ms:.2f}) at load {measured.load:.2f}"
                )
    report(results, args.added_target_pct)


if __name__ == "__main__":
    main()
