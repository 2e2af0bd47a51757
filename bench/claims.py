"""The database side of one run, as a worker does it, with and without a long history.

Per run: claim it for an instance slot (`take_work`), free the slot when its prompt is done,
record the outcome with one output, and check whether the sweep is done. Measured on the real
Postgres with 4 instances of 2 slots, first on an empty database, then beside 1,000,000
finished runs of earlier sweeps: a farm keeps its history, and nothing a claim looks up may
grow with it.

    python -m bench.claims                 # 400 runs, empty and 1,000,000 of history
    python -m bench.claims --history 0     # the empty database only
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.migrate import upgrade_to_head
from app.db.models import Run
from app.domain.states import RunStatus, SweepStatus
from app.queue import make_celery
from app.settings import Settings
from app.stores import instances, outputs, runs, sweeps, teams
from app.stores.outputs import NewOutput
from bench.submit import scratch_database
from workers.dispatching import take_work
from workers.finalization import finish_if_done
from workers.runtime import Runtime, build_runtime

INSTANCES = [f"http://gpu{n}:8188" for n in range(4)]
PHASES = ("claim", "free slot", "record", "sweep done?")


def add_sweep(rt: Runtime, count: int, status: SweepStatus) -> None:
    with rt.sessions() as session:
        team = teams.get_or_create_team(session, "bench")
        sweep = sweeps.add_sweep(
            session,
            sweep_id=uuid4(),
            team_id=team.id,
            workflow="sd15-txt2img",
            request={},
            plan={},
            total=count,
        )
        new_runs = (runs.NewRun(i, {"seed": i}, i, f"m{i % 2}") for i in range(count))
        runs.add_runs(session, sweep.id, new_runs)
        if status is not SweepStatus.RUNNING:
            finished = sa.update(Run).where(Run.sweep_id == sweep.id)
            session.execute(finished.values(status=RunStatus.SUCCEEDED))
        sweeps.move_sweep(session, sweep.id, [SweepStatus.PENDING], status)
        session.commit()


def measure(rt: Runtime, count: int) -> dict[str, list[float]]:
    """Wall milliseconds of each phase for `count` runs, one after another."""
    timings: dict[str, list[float]] = {phase: [] for phase in PHASES}

    def timed(phase: str, started: float) -> float:
        now = time.perf_counter()
        timings[phase].append((now - started) * 1000)
        return now

    for n in range(count):
        started = time.perf_counter()
        work = take_work(rt, f"bench-{n}")
        if work is None:
            raise SystemExit(f"run {n} found no free slot")
        claim = work.claim
        started = timed("claim", started)
        with rt.sessions() as session:
            runs.mark_prompt_done(session, claim)
            session.commit()
        started = timed("free slot", started)
        output = NewOutput(0, "image", f"x/{n}.png", "image/png", 1, "0" * 64)
        with rt.sessions() as session:
            if runs.finish_run(session, claim, RunStatus.SUCCEEDED):
                outputs.add_outputs(session, claim.run_id, [output])
            session.commit()
        started = timed("record", started)
        finish_if_done(rt, claim.sweep_id)
        timed("sweep done?", started)
    return timings


def time_lookups(rt: Runtime, repeat: int = 50) -> dict[str, float]:
    """Median milliseconds of the lookups that span every sweep, each in its own session."""
    lookups: dict[str, Callable[[Session], object]] = {
        "prompts per instance": lambda session: instances.healthy_pool(session, utc_now()),
        "run a task holds": lambda session: runs.claimed_by(session, "no-such-task"),
        "lapsed leases": lambda session: runs.lapsed_leases(session, utc_now()),
    }
    medians = {}
    for name, lookup in lookups.items():
        samples = []
        with rt.sessions() as session:
            for _ in range(repeat):
                started = time.perf_counter()
                lookup(session)
                samples.append((time.perf_counter() - started) * 1000)
        medians[name] = statistics.median(samples)
    return medians


def run(history: int, count: int) -> None:
    with scratch_database() as url:
        upgrade_to_head(url)
        settings = Settings(database_url=url, comfy_instances=",".join(INSTANCES))
        rt = build_runtime(settings, make_celery(settings))
        object.__setattr__(rt, "send", lambda *args, **kwargs: None)  # no broker needed
        with rt.sessions() as session:
            instances.sync_instances(session, [(url, []) for url in INSTANCES])
            session.commit()
        if history:
            started = time.perf_counter()
            add_sweep(rt, history, SweepStatus.SUCCEEDED)
            engine = rt.sessions.kw["bind"]
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(sa.text("VACUUM ANALYZE runs"))
            print(f"  ({history:,} finished runs written in {time.perf_counter() - started:.0f} s)")
        add_sweep(rt, count + 10, SweepStatus.RUNNING)
        timings = measure(rt, count)
        lookups = time_lookups(rt)
        rt.sessions.kw["bind"].dispose()
    total = [sum(parts) for parts in zip(*timings.values(), strict=True)]
    print(f"history of {history:,} runs, {count} runs measured (median / p95 ms):")
    for phase, values in [*timings.items(), ("all", total)]:
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"  {phase:12} {statistics.median(values):6.2f} / {p95:6.2f}")
    shown = ", ".join(f"{name} {ms:.3f}" for name, ms in lookups.items())
    print(f"  lookups across all sweeps (median ms): {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    run(0, args.runs)
    if args.history:
        run(args.history, args.runs)


if __name__ == "__main__":
    main()
