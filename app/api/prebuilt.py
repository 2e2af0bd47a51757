"""The fast path of the polled read routes: queries, response model and JSON in one hop.

A sync route with a `response_model` costs the event loop three trips through the worker
threads: the route, a second validation of what it returned against the `response_model`,
and the session's close; then the JSON is encoded on the loop itself. Under the status polls
of a farm (bench.load: 200 reads a second on two cores) those trips and the second
validation were a large share of the API's CPU per read. Here the route's body runs in one
trip that also releases the session's connection, and the answer is the model's JSON as it
was built and validated once; the `response_model` on the decorator still documents it, and
FastAPI does not validate a returned `Response` again.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session


async def answer_json_autocommit(
    session: Session, engine: Engine, build: Callable[[Connection], BaseModel]
) -> Response:
    """`build()`'s JSON, built on a worker thread on a connection of its own in autocommit:
    a statement is one round trip, without the BEGIN before a session's first query and the
    ROLLBACK that returns its connection to the pool. `session` (authentication's, holding
    nothing once it is done) is closed first, so the request never holds two connections
    (the pool has one per admitted request, app.api.admission), and the session dependency
    is left no I/O to send to a thread of its own. Postgres reads in READ COMMITTED take a
    snapshot per statement anyway, so a read of several statements sees what it saw in a
    transaction."""

    def run() -> bytes:
        session.close()
        with engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            return build(autocommit).model_dump_json(by_alias=True).encode()

    return Response(await anyio.to_thread.run_sync(run), media_type="application/json")


async def answer_json_read(
    session: Session, engine: Engine, build: Callable[[Session], BaseModel]
) -> Response:
    """As `answer_json_autocommit`, for a read through the ORM: `build` gets a session on
    that autocommit connection."""

    def on(connection: Connection) -> BaseModel:
        with Session(bind=connection) as reading:
            return build(reading)

    return await answer_json_autocommit(session, engine, on)
