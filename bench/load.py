"""Read load on the API while a sweep executes: does it keep answering, and come back after
an overload?

Real Postgres (a scratch database), the API in its own uvicorn process as in production,
ComfyUI stand-ins, a real worker and reconciler running a sweep throughout. The load comes
from `bench.loadgen` in another process, open loop (see there), and only to 127.0.0.1.

1. steady: `--rate` req/s of mixed reads (70 % sweep status, 20 % run pages, 10 % workflow
   listings) for `--seconds`; /healthz sampled every 250 ms by a third process, during and
   10 s after;
2. burst: twice the rate for `--burst-seconds`, then /healthz and a 10/s status probe for
   `--after-seconds`: the worst /healthz during the burst and the time until the API is back
   to normal (10 consecutive status probes answering 200 in under 50 ms).

    make bench   # or: python -m bench.load [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from app.settings import PROJECT_ROOT
from bench.loadgen import LoadPlan, LoadResult, Stream
from bench.loadreport import report_burst, report_steady
from bench.system import running_system

HEALTHZ_RATE = 4.0  # every 250 ms
PROBE_RATE = 10.0  # the status probe after the burst
STEADY_AFTER_S = 10.0
STEPS = 10  # sampler steps per run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="steady req/s (burst: 2x)")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady phase length")
    parser.add_argument("--burst-seconds", type=float, default=20.0)
    parser.add_argument("--after-seconds", type=float, default=30.0, help="watched after the burst")
    parser.add_argument("--runs", type=int, default=500, help="runs in the executing sweep")
    parser.add_argument("--instances", type=int, default=2, choices=range(1, 5))
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request deadline, s")
    parser.add_argument(
        "--quick", action="store_true", help="smoke check: 100 req/s for 10 s, a 5 s burst"
    )
    if parser.parse_args().quick:  # new defaults; options given still win
        parser.set_defaults(rate=100.0, seconds=10.0, burst_seconds=5.0, after_seconds=10.0)
        parser.set_defaults(runs=100)
    args = parser.parse_args()
    for name in ("rate", "seconds", "burst_seconds", "after_seconds", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def step_ms(args: argparse.Namespace) -> float:
    """Sampling time per step that keeps the sweep executing through both phases (with a
    margin for start-up and drains): runs x per-run time / instances >= the whole bench."""
    total_s = args.seconds + STEADY_AFTER_S + args.burst_seconds + args.after_seconds + 30
    return float(1000 * 1.2 * total_s * args.instances / args.runs / STEPS)


def submit_sweep(client: httpx.Client, runs: int) -> str:
    body = {
        "workflow": "sd15-txt2img",
        "base": {"steps": STEPS, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": f"1-{runs}"}],
    }
    response = client.post("/v1/sweeps", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


def sweep_state(client: httpx.Client, sweep_id: str) -> str:
    try:
        body = client.get(f"/v1/sweeps/{sweep_id}", timeout=30).raise_for_status().json()
    except httpx.HTTPError as error:
        return f"unreadable ({type(error).__name__})"
    return f"{body['status']}, runs by status {body['counts']}"


def run_phase(
    workdir: Path, base: LoadPlan, load: list[Stream], probes: list[Stream]
) -> list[LoadResult]:
    """The load and the probes in two processes of their own, on one shared schedule."""
    t0 = time.monotonic() + 2.0  # both processes are up and imported by then
    files = []
    for name, streams in (("load", load), ("probes", probes)):
        plan = workdir / f"{name}-plan.json"
        plan.write_text(base.model_copy(update={"t0": t0, "streams": streams}).model_dump_json())
        files.append((plan, workdir / f"{name}-samples.json"))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", str(plan), str(out)], cwd=PROJECT_ROOT
        )
        for plan, out in files
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"bench.loadgen exited with {process.returncode}")
    return [LoadResult.model_validate_json(out.read_bytes()) for _, out in files]


def api_cpu_line(cpu_s: float, wall_s: float, requests: int) -> str:
    """The API's own CPU over a phase (its drain included): how close to a core it ran."""
    return (
        f"  API processes' CPU: {cpu_s:.1f} s in {wall_s:.0f} s ({cpu_s / wall_s:.0%} of one "
        f"core), {1000 * cpu_s / max(requests, 1):.2f} ms per request"
    )


def main() -> None:
    args = parse_args()
    per_step = step_ms(args)
    standin = ["--step-ms", f"{per_step:.1f}", "--checkpoint-load-ms", "50"]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-")))
        system = stack.enter_context(running_system(workdir, args.instances, standin))
        key, url = system.api_key, system.api_url
        client = stack.enter_context(
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        )
        sweep_id = submit_sweep(client, args.runs)
        for path in (f"/v1/sweeps/{sweep_id}", f"/v1/sweeps/{sweep_id}/runs", "/v1/workflows"):
            client.get(path).raise_for_status()  # first-use costs kept out of the numbers
        print(
            f"load: API under uvicorn at {url}, a {args.runs}-run sweep on {args.instances} "
            f"stand-ins ({STEPS} steps x {per_step:.0f} ms per run), generator in its own "
            f"process, per-request deadline {args.timeout:.0f} s, {os.cpu_count()} cores"
        )
        base = LoadPlan(
            base_url=url,
            api_key=key,
            sweep_id=sweep_id,
            sweep_runs=args.runs,
            t0=0.0,
            streams=[],
            timeout_s=args.timeout,
        )
        cpu_before, began = system.cpu_s()["api"], time.monotonic()
        steady = run_phase(
            workdir,
            base,
            [Stream(name="load", kind="mixed", rate=args.rate, start_s=0, duration_s=args.seconds)],
            [
                Stream(
                    name="healthz",
                    kind="healthz",
                    rate=HEALTHZ_RATE,
                    start_s=0,
                    duration_s=args.seconds + STEADY_AFTER_S,
                )
            ],
        )
        report_steady(args.rate, args.seconds, steady[0], steady[1])
        cpu = system.cpu_s()["api"] - cpu_before
        sent = sum(len(r.samples) for r in steady)
        print(api_cpu_line(cpu, time.monotonic() - began, sent))
        print(f"  sweep after the steady phase: {sweep_state(client, sweep_id)}")
        print(f"  machine load average (1 min): {os.getloadavg()[0]:.1f}")
        watched = args.burst_seconds + args.after_seconds
        cpu_before, began = system.cpu_s()["api"], time.monotonic()
        burst = run_phase(
            workdir,
            base,
            [
                Stream(
                    name="load",
                    kind="mixed",
                    rate=2 * args.rate,
                    start_s=0,
                    duration_s=args.burst_seconds,
                )
            ],
            [
                Stream(
                    name="healthz", kind="healthz", rate=HEALTHZ_RATE, start_s=0, duration_s=watched
                ),
                Stream(name="probe", kind="status", rate=PROBE_RATE, start_s=0, duration_s=watched),
            ],
        )
        report_burst(2 * args.rate, args.burst_seconds, burst[0], burst[1])
        cpu = system.cpu_s()["api"] - cpu_before
        sent = sum(len(r.samples) for r in burst)
        print(api_cpu_line(cpu, time.monotonic() - began, sent))
        print(f"  sweep after the burst: {sweep_state(client, sweep_id)}")
        print(f"  machine load average (1 min): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
