"""The COPY payload of new runs: valid, ascending uuid7s, escaped text, one line per run."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from app.stores.run_copy import copy_chunks, uuid7_hexes
from app.stores.runs import NewRun


def test_uuid7_hexes_are_distinct_version_7_uuids_in_ascending_order() -> None:
    unix_ms = 1_780_000_000_000
    hexes = uuid7_hexes(unix_ms, 5_000, 2_000)
    parsed = [UUID(h) for h in hexes]
    assert len(set(parsed)) == 2_000
    assert {(u.version, u.variant) for u in parsed} == {(7, "specified in RFC 4122")}
    assert parsed == sorted(parsed)  # so the primary key index only ever appends
    # The first 48 bits are the time in ms; the run counter carries into them past 4,096.
    assert [u.int >> 80 for u in (parsed[0], parsed[-1])] == [unix_ms + 1, unix_ms + 1]


def test_the_ids_of_one_copy_ascend_across_its_chunks() -> None:
    runs = [NewRun(i, {"seed": i}, i, "k") for i in range(9_000)]
    chunks = list(copy_chunks(uuid4(), runs, datetime.now(UTC), rows=500))
    ids = [UUID(line.split("\t")[0]) for chunk, _ in chunks for line in chunk.decode().splitlines()]
    assert len(set(ids)) == 9_000
    assert ids == sorted(ids)


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
