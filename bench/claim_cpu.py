"""The worker's Python CPU in the SQL of one run: its claim (`take_work`) and its record
(`execution.record`), timed in-process with `time.process_time()` on a scratch Postgres
database, so neither ComfyUI, the broker nor other processes' load enters the figure.

Each cycle is what a slot-keeping worker task does for a run on a zero-work instance
(`workers.slot_keeping`): claim the next queued run, then record its success with one
output. The queue holds `--queued` runs over `--sweeps` running sweeps of `--teams` teams
(`bench.claims.fill_queue`; 100 of 10 unless told), so fair share and model affinity choose
as they do at scale.

    python -m bench.claim_cpu                  # 5 rounds of 200 cycles, 10,000 queued
    python -m bench.claim_cpu --sweeps 2 --teams 1   # as bench.execution's few sweeps
    python -m bench.claim_cpu --no-events      # without writing the event log at commit

Rounds are measured one after another in one process; their median is the figure to compare
(the machine is shared, so a round may be slowed by others' work). Each round is followed by
one of the same cycles as the slot keeper runs them now (`workers.refilling`): the record
and the next claim in one transaction where the slot can be handed over, else one after the
other; its cycle's CPU is printed beside the separate one's. That pair compares two paths of
the same worker in the same run and prints no verdict: the issue's targets are judged by
`bench.claims` (claim time at 100,000 queued) and `bench.execution` (CPU per run against the
direct driver's run). `--queued 100000` measures both paths at the scale of that target.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.migrate import upgrade_to_head
from app.registry import load_registry
from app.services.workflows import sync_shipped
from app.settings import PROJECT_ROOT
from app.stores import events
from app.stores.outputs import NewOutput
from bench.claims import SWEEPS, TEAMS, brokerless_runtime, fill_queue
from bench.submit import scratch_database
from workers.dispatching import take_work
from workers.execution import Finished, Succeeded, record
from workers.refilling import record_then_take
from workers.runtime import Runtime


@dataclass(frozen=True)
class Round:
    claim_ms: float  # worker CPU per claim
    record_ms: float  # worker CPU per record
    handover_ms: float  # worker CPU per record with the next claim (`record_then_take`)

    @property
    def cycle_ms(self) -> float:
        return self.claim_ms + self.record_ms


class Cycles:
    """Claims and records runs one after another, as a task keeping its slot does."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.done = 0

    def measure(self, count: int) -> Round:
        claim_s, record_s = self.separately(count)
        return Round(claim_s * 1000 / count, record_s * 1000 / count, self.together(count))

    def separately(self, count: int) -> tuple[float, float]:
        claim_s = record_s = 0.0
        for _ in range(count):
            n = self.done
            started = time.process_time()
            work = take_work(self.rt, f"cpu-{n}", maybe_held=False)
            claimed = time.process_time()
            if work is None:
                raise SystemExit(f"cycle {n} found no queued run")
            claim = work.claim
            output = NewOutput(0, "image", f"x/{n}.png", "image/png", 1, "0" * 64)
            record(self.rt, claim, Succeeded([output]))
            recorded = time.process_time()
            claim_s += claimed - started
            record_s += recorded - claimed
            self.done += 1
        return claim_s, record_s

    def together(self, count: int) -> float:
        """CPU ms per cycle of `record_then_take` under one task id, as a slot keeper."""
        task_id = f"cpu-slot-{self.done}"
        work = take_work(self.rt, task_id, maybe_held=False)
        started = time.process_time()
        for _ in range(count):
            if work is None:
                raise SystemExit(f"cycle {self.done} found no queued run")
            output = NewOutput(0, "image", f"x/{self.done}.png", "image/png", 1, "0" * 64)
            work = record_then_take(self.rt, task_id, Finished(work.claim, Succeeded([output])))
            self.done += 1
        spent = time.process_time() - started
        if work is not None:  # the last one taken is left running, as a slot's would be
            record(self.rt, work.claim, Succeeded([]))
        return spent * 1000 / count


def runtime(url: str) -> Runtime:
    rt = brokerless_runtime(url)
    with rt.sessions() as session:
        # The sweeps name a shipped workflow, as the worker's metrics look it up.
        sync_shipped(session, load_registry(PROJECT_ROOT / "workflows", PROJECT_ROOT / "params"))
    return rt


def run(queued: int, spread: tuple[int, int], rounds: int, count: int, warm: int) -> list[Round]:
    with scratch_database() as url:
        upgrade_to_head(url)
        rt = runtime(url)
        fill_queue(rt, queued, *spread)
        engine = rt.sessions.kw["bind"]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
        cycles = Cycles(rt)
        cycles.measure(warm)  # statement caches, connections, the workflow cache
        measured = [cycles.measure(count) for _ in range(rounds)]
        engine.dispose()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--sweeps", type=int, default=SWEEPS, help="running sweeps")
    parser.add_argument("--teams", type=int, default=TEAMS, help="teams they belong to")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200, help="cycles per round")
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument(
        "--no-events", action="store_true", help="queue events but write none at commit"
    )
    args = parser.parse_args()
    if args.no_events:
        sa.event.remove(Session, "before_commit", events._write_pending)
    measured = run(args.queued, (args.sweeps, args.teams), args.rounds, args.runs, args.warm)
    for n, got in enumerate(measured, 1):
        print(
            f"  round {n}: claim {got.claim_ms:5.2f}  record {got.record_ms:5.2f}  "
            f"cycle {got.cycle_ms:5.2f} ms CPU; handed over {got.handover_ms:5.2f} ms"
        )

    def median(part: str) -> float:
        return float(statistics.median(getattr(got, part) for got in measured))

    events_note = "no event writes" if args.no_events else "with event writes"
    print(
        f"worker CPU per run, median of {args.rounds} rounds of {args.runs} "
        f"({args.queued:,} queued in {args.sweeps} sweeps of {args.teams} teams, {events_note}): "
        f"claim {median('claim_ms'):.2f} ms, "
        f"record {median('record_ms'):.2f} ms, cycle {median('cycle_ms'):.2f} ms; "
        f"record with the next claim (workers.refilling) {median('handover_ms'):.2f} ms"
    )


if __name__ == "__main__":
    main()
