"""The database side of one run, as a worker does it: with a deep queue, and with a long
history.

1. Claim time against the queue's depth: 1,000, 10,000 and 100,000 runs queued across 100
   running sweeps of 10 teams (fair share chooses among them), 4 instances of 2 slots. Each
   measured claim (`take_work`) is followed by finishing its run, so the depth stays put.
   Target: median under 10 ms at 100,000, and no worse than 2x the 1,000 case. The
   first-come-first-served query that claims used before is timed beside it for scale.
2. Per run, the worker's two transactions: claim it for an instance slot (as the task that
   recorded the previous run does, in the same task), then record the outcome with one output
   and check whether the sweep is done, first on an empty database,
   then beside 1,000,000 finished runs of earlier sweeps: a farm keeps its history, and
   nothing a claim looks up may grow with it.

    python -m bench.claims                 # both; history of 1,000,000
    python -m bench.claims --history 0     # the queue depths only
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.migrate import upgrade_to_head
from app.db.models import Run
from app.domain.states import RunStatus, SweepStatus
from app.queue import make_celery
from app.settings import Settings
from app.stores import instances, runs, sweeps, teams
from app.stores.outputs import NewOutput
from bench.submit import scratch_database
from workers.dispatching import take_work
from workers.runtime import Runtime, build_runtime

INSTANCES = [f"http://gpu{n}:8188" for n in range(4)]
PHASES = ("claim", "record")


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
        # As a task keeping its slot: the run it held is recorded, so none is looked for.
        work = take_work(rt, f"bench-{n}", maybe_held=False)
        if work is None:
            raise SystemExit(f"run {n} found no free slot")
        claim = work.claim
        started = timed("claim", started)
        output = NewOutput(0, "image", f"x/{n}.png", "image/png", 1, "0" * 64)
        with rt.sessions() as session:
            runs.record_succeeded(session, claim, [output])
            sweeps.start_finalizing_if_drained(session, claim.sweep_id)
            session.commit()
        timed("record", started)
    return timings


def time_lookups(rt: Runtime, repeat: int = 50) -> dict[str, float]:
    """Median milliseconds of the lookups that span every sweep, each in its own session."""
    lookups: dict[str, Callable[[Session], object]] = {
        "prompts per instance": lambda session: instances.healthy_pool(session, utc_now()),
        "emptiest instance, locked": lambda session: instances.lock_emptiest(
            session, utc_now(), rt.settings.instance_slots
        ),
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


def brokerless_runtime(url: str) -> Runtime:
    """A worker's runtime on the database at `url`, its pool `INSTANCES`, sending nothing."""
    settings = Settings(database_url=url, comfy_instances=",".join(INSTANCES))
    rt = build_runtime(settings, make_celery(settings))
    object.__setattr__(rt, "send", lambda *args, **kwargs: None)  # no broker needed
    with rt.sessions() as session:
        instances.sync_instances(session, [(url, []) for url in INSTANCES])
        session.commit()
    return rt


def run(history: int, count: int) -> None:
    with scratch_database() as url:
        upgrade_to_head(url)
        rt = brokerless_runtime(url)
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


QUEUE_DEPTHS = (1_000, 10_000, 100_000)
TEAMS, SWEEPS = 10, 100
CLAIMS_MEASURED = 200

# What claims ran before fair share, for scale: every queued run ordered by CASE expressions.
FIRST_COME_FIRST_SERVED = sa.text(
    "SELECT runs.id FROM runs JOIN sweeps ON sweeps.id = runs.sweep_id "
    "WHERE sweeps.status = 'running' AND runs.status = 'queued' "
    "ORDER BY sweeps.created_at, CASE WHEN runs.model_key = 'm0' THEN 0 ELSE 1 END, "
    "CASE WHEN runs.model_key IN ('m1') THEN 1 ELSE 0 END, runs.dispatch_order "
    "LIMIT 1 FOR UPDATE OF runs SKIP LOCKED"
)


def fill_queue(rt: Runtime, depth: int, sweep_count: int = SWEEPS, team_count: int = TEAMS) -> None:
    """`depth` queued runs in `sweep_count` running sweeps of `team_count` teams, two models
    each."""
    per_sweep = depth // sweep_count
    with rt.sessions() as session:
        team_ids = [teams.get_or_create_team(session, f"team{n}").id for n in range(team_count)]
        for n in range(sweep_count):
            sweep = sweeps.add_sweep(
                session,
                sweep_id=uuid4(),
                team_id=team_ids[n % team_count],
                workflow="sd15-txt2img",
                request={},
                plan={},
                total=per_sweep,
            )
            new_runs = (
                runs.NewRun(i, {"seed": i}, i, f"m{2 * i // per_sweep}") for i in range(per_sweep)
            )
            runs.add_runs(session, sweep.id, new_runs)
            sweeps.move_sweep(session, sweep.id, [SweepStatus.PENDING], SweepStatus.RUNNING)
        session.commit()


def measure_claims(rt: Runtime) -> list[float]:
    """Milliseconds of each claim, its run finished at once so every slot stays free."""
    samples = []
    for n in range(CLAIMS_MEASURED):
        started = time.perf_counter()
        work = take_work(rt, f"bench-{n}")
        samples.append((time.perf_counter() - started) * 1000)
        if work is None:
            raise SystemExit(f"claim {n} found nothing to do")
        with rt.sessions() as session:
            runs.finish_run(session, work.claim, RunStatus.SUCCEEDED)
            session.commit()
    return samples


def time_old_query(rt: Runtime, repeat: int = 5) -> float:
    samples = []
    with rt.sessions() as session:
        for _ in range(repeat):
            started = time.perf_counter()
            session.execute(FIRST_COME_FIRST_SERVED)
            samples.append((time.perf_counter() - started) * 1000)
            session.rollback()
    return statistics.median(samples)


def backend_cpu_s(rt: Runtime) -> float:
    """CPU seconds used so far by the Postgres backends serving this database (from /proc,
    as the server runs on this machine): the claim's server cost, whatever the load."""
    query = sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    with rt.sessions() as session:
        pids = list(session.scalars(query))
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass(frozen=True)
class Depth:
    median_ms: float
    p95_ms: float
    old_query_ms: float
    client_cpu_ms: float  # per claim (and the finish that follows it), this process
    server_cpu_ms: float  # per claim and finish, the Postgres backends


def run_depth(depth: int) -> Depth:
    """Wall and CPU per claim at `depth` queued runs, and the old query's median."""
    with scratch_database() as url:
        upgrade_to_head(url)
        rt = brokerless_runtime(url)
        fill_queue(rt, depth)
        engine = rt.sessions.kw["bind"]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
        measure_claims(rt)  # warm: statement caches, connections, the buffer cache
        client, server = time.process_time(), backend_cpu_s(rt)
        samples = measure_claims(rt)
        client, server = time.process_time() - client, backend_cpu_s(rt) - server
        old = time_old_query(rt)
        engine.dispose()
    per_claim = 1000 / CLAIMS_MEASURED
    return Depth(
        statistics.median(samples),
        statistics.quantiles(samples, n=20)[-1],
        old,
        client * per_claim,
        server * per_claim,
    )


def bench_queue_depths() -> None:
    print(
        f"claim time against queue depth ({SWEEPS} running sweeps of {TEAMS} teams, "
        f"{len(INSTANCES)} instances x 2 slots; {CLAIMS_MEASURED} claims each; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    medians = {}
    for depth in QUEUE_DEPTHS:
        got = run_depth(depth)
        medians[depth] = got.median_ms
        print(
            f"  {depth:>7,} queued: claim median {got.median_ms:6.2f} ms, p95 {got.p95_ms:6.2f} "
            f"ms; CPU per claim+finish: worker {got.client_cpu_ms:.2f} ms, Postgres "
            f"{got.server_cpu_ms:.2f} ms (the first-come-first-served query alone: "
            f"{got.old_query_ms:.2f} ms)"
        )
    deepest, shallowest = medians[QUEUE_DEPTHS[-1]], medians[QUEUE_DEPTHS[0]]
    verdict = "PASS" if deepest < 10 and deepest <= 2 * shallowest else "MISS"
    print(
        f"  {verdict}: {deepest:.2f} ms at {QUEUE_DEPTHS[-1]:,} (target < 10 ms and "
        f"<= 2x {shallowest:.2f} ms = {2 * shallowest:.2f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    bench_queue_depths()
    if args.history:
        run(0, args.runs)
        run(args.history, args.runs)


if __name__ == "__main__":
    main()
