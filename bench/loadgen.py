"""The client side of `bench.load`: open-loop request streams, run in a process of their own.

Open loop, as a farm of polling nodes is: request i of a stream is due at t0 + start + i/rate
and is launched as its own task whether or not earlier ones have answered, so a server that
falls behind sees its backlog grow instead of the client politely slowing down. Every request
records when it was due, when it was actually sent (the client's own lateness) and how it
ended. Only 127.0.0.1, bounded in count, in time (a per-request deadline) and in requests in
flight; a request the cap stops is recorded as not sent, never silently dropped.

    python -m bench.loadgen plan.json samples.json   # bench.load does this
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import time
from pathlib import Path
from typing import Literal

import uvloop
from pydantic import BaseModel, Field

from bench.load_http import Client, ProtocolError

NOT_SENT = "not sent (in-flight cap)"

Kind = Literal["mixed", "healthz", "status"]


class Stream(BaseModel):
    name: str
    kind: Kind
    rate: float = Field(gt=0)
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)


class LoadPlan(BaseModel):
    base_url: str = Field(pattern=r"^http://127\.0\.0\.1:\d+$")
    api_key: str
    sweep_id: str
    sweep_runs: int = Field(ge=1)
    t0: float  # time.monotonic(): one clock for every process on the machine
    streams: list[Stream]
    timeout_s: float = Field(default=10.0, gt=0)
    max_in_flight: int = Field(default=2000, ge=1)
    seed: int = 1


class Sample(BaseModel):
    stream: str
    route: str
    due_s: float  # relative to t0
    sent_s: float | None  # None when the in-flight cap stopped it
    latency_s: float | None  # None when not sent
    outcome: str  # the status code, "timeout", "connection error", an error name, or NOT_SENT


class LoadResult(BaseModel):
    samples: list[Sample]
    cpu_s: float  # this process's user + system time while the streams ran
    wall_s: float


class Targets:
    """Picks each request's route: the mixed read load, or one probe route."""

    def __init__(self, plan: LoadPlan) -> None:
        self.sweep = f"/v1/sweeps/{plan.sweep_id}"
        self.pages = max(1, -(-plan.sweep_runs // 50))
        self.random = random.Random(plan.seed)

    def pick(self, kind: Kind) -> tuple[str, str]:
        if kind == "healthz":
            return "healthz", "/healthz"
        if kind == "status":
            return "status", self.sweep
        # Mostly status polls, some run pages, a few workflow listings: what nodes and
        # dashboards polling a farm send.
        roll = self.random.random()
        if roll < 0.7:
            return "status", self.sweep
        if roll < 0.9:
            offset = 50 * self.random.randrange(self.pages)
            return "runs page", f"{self.sweep}/runs?limit=50&offset={offset}"
        return "workflows", "/v1/workflows"


class Generator:
    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.targets = Targets(plan)
        self.samples: list[Sample] = []
        self.in_flight: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.plan.t0

    async def run(self) -> None:
        # Clients of their own per stream, so a probe never waits for a pooled connection the
        # load holds (bench.load_http: why not httpx).
        headers = {"Authorization": f"Bearer {self.plan.api_key}"}
        clients = [Client(self.plan.base_url, headers) for _ in self.plan.streams]
        try:
            await asyncio.gather(
                *(self.fire(s, c) for s, c in zip(self.plan.streams, clients, strict=True))
            )
            while self.in_flight:
                await asyncio.gather(*list(self.in_flight))
        finally:
            for client in clients:
                client.close()

    async def fire(self, stream: Stream, client: Client) -> None:
        for i in range(round(stream.rate * stream.duration_s)):
            due = stream.start_s + i / stream.rate
            delay = due - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            route, path = self.targets.pick(stream.kind)
            if len(self.in_flight) >= self.plan.max_in_flight:
                self.samples.append(
                    Sample(
                        stream=stream.name,
                        route=route,
                        due_s=due,
                        sent_s=None,
                        latency_s=None,
                        outcome=NOT_SENT,
                    )
                )
                continue
            task = asyncio.create_task(self.request(client, stream.name, route, path, due))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def request(self, client: Client, stream: str, route: str, path: str, due: float) -> None:
        sent = self.now()
        try:
            async with asyncio.timeout(self.plan.timeout_s):
                outcome = str(await client.get(path))
        except TimeoutError:
            outcome = "timeout"
        except OSError:
            outcome = "connection error"
        except ProtocolError as error:
            outcome = type(error).__name__
        latency = self.now() - sent
        self.samples.append(
            Sample(
                stream=stream,
                route=route,
                due_s=due,
                sent_s=sent,
                latency_s=latency,
                outcome=outcome,
            )
        )


def main() -> None:
    plan_path, samples_path = (Path(arg) for arg in sys.argv[1:3])
    plan = LoadPlan.model_validate_json(plan_path.read_bytes())
    generator = Generator(plan)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    uvloop.run(generator.run())  # about half the CPU per request of the stock loop
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = LoadResult(samples=generator.samples, cpu_s=cpu, wall_s=time.monotonic() - started)
    samples_path.write_text(result.model_dump_json())


if __name__ == "__main__":
    main()
