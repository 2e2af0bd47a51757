"""CPU per run of two or more code trees, measured side by side on a shared machine.

`bench.execution`'s zero-work CPU per run rises with the machine's load (on a 2-core VM shared
with other work, 29 ms/run quiet became 35-50 at load 7-15), so two trees measured one after
the other differ by more than most changes save. Here every tree gets its own system (API,
worker, reconciler, stand-ins: `bench.system`), all up at once, and sweeps alternate between
them round by round, the order reversed every other round, so load hits each tree alike.

    python -m bench.paired /path/to/tree-a /path/to/tree-b --rounds 5 --runs 200

It ranks code trees against each other, so a change smaller than the machine's drift can be
told from it; it is not the baseline of any target. Each tree's figure is also judged against
issue #13's target as the issue states it (worker + API + reconciler CPU per run with a
zero-work stand-in at most 10 ms, 200-run sweeps on 4 stand-ins, as `bench.execution`), which
is an absolute number and needs no baseline.

A tree is a checkout of this repository (`git worktree add` or `git archive | tar -x`); its
processes import from it (`bench.processes` starts them in PROJECT_ROOT with `python -m`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import processes
from bench.execution import CPU_TARGET_MS, SERVICE, ZERO_WORK, Bench
from bench.sweep_client import SweepClient
from bench.system import running_system


def start(stack: ExitStack, workdir: Path, tree: Path) -> Bench:
    os.environ["PYTHONPATH"] = str(tree)
    # Where `spawn` starts `python -m`, so the system's processes import from the tree.
    processes.PROJECT_ROOT = tree  # type: ignore[attr-defined]
    system = stack.enter_context(running_system(workdir, 4, ZERO_WORK.standin_args))
    client = stack.enter_context(SweepClient(system))
    return Bench(system, client, ZERO_WORK)


def service_ms(bench: Bench, runs: int) -> tuple[float, float]:
    """(worker + API + reconciler CPU ms/run, the machine's load) over one sweep."""
    measured = bench.run_sweep(bench.seeds(runs))
    return sum(measured.cpu_s[name] for name in SERVICE) / runs * 1000, measured.load_1m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    trees: list[Path] = [tree.resolve() for tree in args.trees]
    results: dict[Path, list[float]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="comfy-sweep-paired-") as tmp, ExitStack() as stack:
        benches = [start(stack, Path(tmp) / f"tree{n}", tree) for n, tree in enumerate(trees)]
        for bench in benches:  # warm-up: each worker process's one-time costs
            bench.run_sweep(bench.seeds(96))
        for number in range(1, args.rounds + 1):
            order = list(zip(trees, benches, strict=True))
            for tree, bench in order if number % 2 else reversed(order):
                ms, load = service_ms(bench, args.runs)
                results[tree].append(ms)
                print(f"round {number} {tree.name}: {ms:.2f} ms/run at load {load:.2f}")
    for tree, values in results.items():
        median = statistics.median(values)
        verdict = "PASS" if median <= CPU_TARGET_MS else "MISS"
        print(
            f"{tree}: worker + API + reconciler median {median:.2f} ms/run, "
            f"mean {statistics.mean(values):.2f}, min {min(values):.2f} "
            f"(target <= {CPU_TARGET_MS:.0f} ms) {verdict}"
        )


if __name__ == "__main__":
    main()
