"""The slot sizes a sweep's worker processes share (`app.grids.slot_sizes`): what is written
is read back exactly, in a few bytes for a uniform grid, and anything else reads as no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domain.grid_geometry import Size
from app.grids.slot_sizes import read_slot_sizes, slot_sizes_name, write_slot_sizes

WIDE, TALL = Size(256, 128), Size(120, 250)


def test_sizes_come_back_as_written_gaps_included(tmp_path: Path) -> None:
    sizes = {0: WIDE, 1: WIDE, 2: TALL, 3: WIDE, 7: WIDE, 8: TALL}
    path = tmp_path / "slots.json"
    write_slot_sizes(path, sizes)
    assert read_slot_sizes(path, 9) == sizes


def test_a_uniform_grid_is_one_size_and_one_span(tmp_path: Path) -> None:
    path = tmp_path / "slots.json"
    write_slot_sizes(path, dict.fromkeys(range(1000), WIDE))
    assert json.loads(path.read_text()) == {"sizes": [[256, 128]], "spans": [[0, 1000, 0]]}
    assert read_slot_sizes(path, 1000) == dict.fromkeys(range(1000), WIDE)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"sizes": [[256, 128]]}',
        '{"sizes": [[0, 128]], "spans": [[0, 1, 0]]}',
        '{"sizes": [[256, true]], "spans": [[0, 1, 0]]}',
        '{"sizes": [[256, 128]], "spans": [[0, 1, 1]]}',
        '{"sizes": [[256, 128]], "spans": [[-1, 2, 0]]}',
        '{"sizes": [[256, 128]], "spans": [[0, 0, 0]]}',
        '{"sizes": [[256, 128]], "spans": [[0, 1000000000000, 0]]}',
        '{"sizes": [[256, 128]], "spans": [[0, "1", 0]]}',
        "[]",
    ],
)
def test_anything_else_reads_as_no_file(tmp_path: Path, body: str) -> None:
    path = tmp_path / "slots.json"
    path.write_text(body)
    assert read_slot_sizes(path, 10) is None


def test_no_file_reads_as_none(tmp_path: Path) -> None:
    assert read_slot_sizes(tmp_path / "missing.json", 10) is None


def test_the_name_changes_with_what_the_plan_is_computed_from() -> None:
    plan = {"axes": [{"param": "cfg", "values": [4, 6]}]}
    base = slot_sizes_name(plan, 2, [512, 512])
    assert slot_sizes_name(plan, 2, [512, 512]) == base
    assert slot_sizes_name(plan, 3, [512, 512]) != base  # extended
    assert slot_sizes_name(plan, 2, [768, 512]) != base  # another first image
    assert slot_sizes_name({**plan, "seeds": [1]}, 2, [512, 512]) != base
    assert base.startswith("slots-")
    assert base.endswith(".json")
    assert "/" not in base
