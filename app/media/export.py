"""A sweep as one zip, streamed: `sweep.json`, `metadata.csv` (a row per run) and the outputs.

`stream_zip` yields the archive while it is written: each file is read in 1 MiB blocks and
every block leaves as soon as zipfile has framed it, so neither the archive nor one video
ever sits in memory. The output is not seekable, so entries carry data descriptors (sizes
and CRC after the data), which every unzip tool reads from the central directory.

Member names are built here from numbers and whitelisted suffixes, and sanitized again on
the way in: no absolute path, no `..`, nothing but `[A-Za-z0-9._-]` in a segment. This module
does no database access and never resolves stored paths itself: callers hand it files that
already went through `Storage.resolve`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from app.media.storage import BLOCK_SIZE, suffix_for_mime

# Already compressed: deflating them again costs CPU and saves nothing.
_STORED_MIMES = frozenset(
    {
        "image/png",
        "image/apng",
        "image/jpeg",
        "image/webp",
        "image/gif",
        "image/avif",
        "video/mp4",
        "video/webm",
        "video/quicktime",
        "video/x-matroska",
        "audio/flac",
        "audio/mpeg",
        "audio/ogg",
        "audio/opus",
    }
)
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
# A spreadsheet runs a cell starting with these as a formula (CSV injection, OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
RUN_COLUMNS = (
    "index",
    "status",
    "attempts",
    "instance",
    "error_kind",
    "error_message",
    "outputs",
)


@dataclass(frozen=True, slots=True)
class ZipEntry:
    name: str  # inside the archive; sanitized again when written
    source: Path | bytes
    modified: datetime
    compress: bool = True


@dataclass(frozen=True, slots=True)
class ExportFile:
    n: int
    mime: str
    path: Path  # already through `Storage.resolve`
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExportRun:
    index: int
    status: str
    attempts: int
    instance: str | None
    error: Mapping[str, Any] | None
    assignment: Mapping[str, Any]
    files: tuple[ExportFile, ...]


@dataclass(frozen=True, slots=True)
class ExportSweep:
    id: UUID
    workflow: str
    status: str
    total: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    request: Mapping[str, Any]
    plan: Mapping[str, Any]


def archive_name(sweep_id: UUID) -> str:
    return f"sweep-{sweep_id}.zip"


def sweep_entries(sweep: ExportSweep, runs: Sequence[ExportRun]) -> Iterator[ZipEntry]:
    """Every member of the export: the two documents first (quick first bytes), then files."""
    root = f"sweep-{sweep.id}"
    now = datetime.now(UTC)
    yield ZipEntry(f"{root}/sweep.json", sweep_json(sweep), now)
    params = parameter_names(sweep.plan, (run.assignment for run in runs))
    yield ZipEntry(f"{root}/metadata.csv", metadata_csv(runs, params), now)
    for run in runs:
        for file in run.files:
            name = f"{root}/{member_name(run.index, file)}"
            compress = file.mime not in _STORED_MIMES
            yield ZipEntry(name, file.path, file.created_at, compress)


def member_name(run_index: int, file: ExportFile) -> str:
    """`outputs/000003-0.png`: flat, sorted by run, suffix from the whitelist."""
    return f"outputs/{run_index:06d}-{file.n}{suffix_for_mime(file.mime)}"


def parameter_names(plan: Mapping[str, Any], assignments: Iterable[Mapping[str, Any]]) -> list[str]:
    """The sweep's parameters: its axes in plan order, then any other assigned name as first
    seen (seeds, fixed values), each once."""
    names: dict[str, None] = {}
    for axis in plan.get("axes", []):
        if isinstance(axis, Mapping) and isinstance(axis.get("param"), str):
            names[axis["param"]] = None
    for assignment in assignments:
        names.update(dict.fromkeys(assignment))
    return list(names)


def sweep_json(sweep: ExportSweep) -> bytes:
    """The stored request and plan, with the sweep's identity and timestamps."""
    document = {
        "id": str(sweep.id),
        "workflow": sweep.workflow,
        "status": sweep.status,
        "total": sweep.total,
        "created_at": _iso(sweep.created_at),
        "started_at": _iso(sweep.started_at),
        "finished_at": _iso(sweep.finished_at),
        "request": sweep.request,
        "plan": sweep.plan,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str).encode()


def metadata_csv(runs: Iterable[ExportRun], params: Sequence[str]) -> bytes:
    """One row per run: its state, its files (names inside the zip), one column a parameter.

    A parameter named like a run column gets the column `param:<name>`, so no header repeats.
    """
    header = [*RUN_COLUMNS, *(f"param:{p}" if p in RUN_COLUMNS else p for p in params)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_text_cell(name) for name in header])
    for run in runs:
        writer.writerow(_run_row(run, params))
    # UTF-8 with a BOM: spreadsheet programs otherwise read non-ASCII prompts as Latin-1.
    return buffer.getvalue().encode("utf-8-sig")


def _run_row(run: ExportRun, params: Sequence[str]) -> list[str]:
    error = run.error or {}
    files = ";".join(member_name(run.index, file) for file in run.files)
    row = [str(run.index), run.status, str(run.attempts), _text_cell(run.instance or "")]
    row += [_text_cell(str(error.get("kind", ""))), _text_cell(str(error.get("message", "")))]
    row.append(files)
    row += [_value_cell(run.assignment, name) for name in params]
    return row


def _value_cell(assignment: Mapping[str, Any], name: str) -> str:
    if name not in assignment:
        return ""
    value = assignment[name]
    if isinstance(value, str):
        return _text_cell(value)
    # Numbers, booleans, null, lists: their JSON, so `true`/`null` survive a round trip.
    return json.dumps(value, ensure_ascii=False, default=str)


def _text_cell(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- the archive itself ---


def sanitize_member_name(name: str) -> str:
    """A relative POSIX path that extracts inside the target directory, whatever `name` is."""
    segments = [_UNSAFE_CHARACTERS.sub("_", part) for part in re.split(r"[/\\]+", name)]
    kept = [part for part in segments if part.strip(".")]
    return "/".join(kept) or "unnamed"


class _Outbox:
    """The file zipfile writes into: holds the bytes until the generator hands them on."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def stream_zip(entries: Iterable[ZipEntry]) -> Iterator[bytes]:
    """The zip of `entries`, in chunks of about 1 MiB, produced as it is read."""
    outbox = _Outbox()
    with zipfile.ZipFile(outbox, "w", allowZip64=True) as archive:
        for entry in entries:
            yield from _write_entry(archive, outbox, entry)
    if tail := outbox.take():  # the central directory, written on close
        yield tail


def _write_entry(archive: zipfile.ZipFile, outbox: _Outbox, entry: ZipEntry) -> Iterator[bytes]:
    info = zipfile.ZipInfo(sanitize_member_name(entry.name), date_time=_zip_time(entry.modified))
    info.compress_type = zipfile.ZIP_DEFLATED if entry.compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    if isinstance(entry.source, bytes):
        info.file_size = len(entry.source)
        with archive.open(info, "w") as member:
            member.write(entry.source)
    else:
        with entry.source.open("rb") as file:
            # The size up front lets zipfile pick Zip64 framing for files above 4 GiB.
            info.file_size = os.fstat(file.fileno()).st_size
            with archive.open(info, "w") as member:
                while block := file.read(BLOCK_SIZE):
                    member.write(block)
                    if chunk := outbox.take():
                        yield chunk
    if chunk := outbox.take():
        yield chunk


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    # Zip timestamps are local-less and start in 1980; UTC is the honest choice here.
    utc = moment.astimezone(UTC)
    if utc.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
