"""The COPY payload of new runs: valid uuid4s, escaped text, one line per run."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from app.stores.run_copy import copy_chunks, uuid4_hexes
from app.stores.runs import NewRun


def test_uuid4_hexes_are_distinct_version_4_uuids() -> None:
    hexes = uuid4_hexes(2_000)
    parsed = [UUID(h) for h in hexes]
    assert len(set(parsed)) == 2_000
    assert {(u.version, u.variant) for u in parsed} == {(4, "specified in RFC 4122")}


def test_a_chunk_holds_one_line_per_run_with_tabs_and_newlines_escaped() -> None:
    sweep_id = uuid4()
    runs = [NewRun(i, {"prompt": "a\tb\nc\\d"}, 7, "k") for i in range(5)]

    chunks = list(copy_chunks(sweep_id, runs, datetime(2026, 1, 1, tzinfo=UTC), rows=2))

    assert [rows for _, rows in chunks] == [2, 2, 1]
    lines = b"".join(chunk for chunk, _ in chunks).decode().splitlines()
    fields = lines[4].split("\t")
    assert fields[1:] == [
        sweep_id.hex,
        "4",
        '{"prompt":"a\\\\tb\\\\nc\\\\\\\\d"}',
        "2026-01-01T00:00:00+00:00",
        "7",
        "k",
    ]
