"""The path guard under DATA_DIR, the output layout, hashing, and atomic writes."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import pytest

from app.media.storage import (
    Digest,
    Storage,
    UnsafePath,
    atomic_file,
    hash_file,
    kind_for_mime,
    suffix_for_mime,
)

SWEEP = UUID("5f0c7f7e-7f55-4c8e-9d0e-2f3b8a1c9d10")


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    root = tmp_path / "data"
    root.mkdir()
    return Storage(root)


def test_outputs_live_in_one_directory_per_run(storage: Storage) -> None:
    path = storage.output_path(SWEEP, 42, 1, ".png")
    assert path == storage.root / "sweeps" / str(SWEEP) / "runs" / "000042" / "1.png"
    assert storage.relative(path) == f"sweeps/{SWEEP}/runs/000042/1.png"


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("png", ".png"), (".PNG", ".png"), (".jpeg", ".jpg"), (".mp4", ".mp4"), (".webm", ".webm")],
)
def test_known_suffixes_are_normalised(storage: Storage, suffix: str, expected: str) -> None:
    assert storage.output_path(SWEEP, 0, 0, suffix).suffix == expected


@pytest.mark.parametrize("suffix", [".html", ".svg", ".exe", "", ".png/../../x", ".p\x00ng"])
def test_other_suffixes_become_bin(storage: Storage, suffix: str) -> None:
    path = storage.output_path(SWEEP, 0, 3, suffix)
    assert path.name == "3.bin"


def test_negative_indexes_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        storage.output_path(SWEEP, -1, 0, ".png")


@pytest.mark.parametrize(
    ("mime", "suffix", "kind"),
    [
        ("image/png", ".png", "image"),
        ("IMAGE/JPEG; charset=binary", ".jpg", "image"),
        ("image/webp", ".webp", "image"),
        ("image/gif", ".gif", "image"),
        ("video/mp4", ".mp4", "video"),
        ("video/quicktime", ".mov", "video"),
        ("audio/flac", ".flac", "audio"),
        ("image/svg+xml", ".bin", "image"),
        ("text/html", ".bin", "file"),
        ("application/octet-stream", ".bin", "file"),
    ],
)
def test_mime_types_map_to_whitelisted_suffixes(mime: str, suffix: str, kind: str) -> None:
    assert suffix_for_mime(mime) == suffix
    assert kind_for_mime(mime) == kind


def test_resolve_returns_the_real_path_inside_the_root(storage: Storage) -> None:
    target = storage.root / "sweeps" / "a.png"
    assert storage.resolve("sweeps/a.png") == target
    assert storage.resolve("sweeps/./a.png") == target


@pytest.mark.parametrize(
    "relative",
    [
        "../secret",
        "sweeps/../../secret",
        "sweeps/..",
        "/etc/passwd",
        "//etc/passwd",
        "sweeps/a\x00.png",
        "sweeps\\..\\..\\secret",
        "",
        ".",
    ],
)
def test_resolve_refuses_paths_that_leave_the_root(storage: Storage, relative: str) -> None:
    with pytest.raises(UnsafePath):
        storage.resolve(relative)


def test_resolve_refuses_a_symlink_that_leaves_the_root(storage: Storage, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (storage.root / "sweeps").mkdir()
    (storage.root / "sweeps" / "link.png").symlink_to(outside)
    (storage.root / "escape").symlink_to(tmp_path)
    for relative in ("sweeps/link.png", "escape/secret.txt"):
        with pytest.raises(UnsafePath):
            storage.resolve(relative)


def test_resolve_allows_a_symlink_that_stays_inside(storage: Storage) -> None:
    (storage.root / "real.png").write_bytes(b"x")
    (storage.root / "alias.png").symlink_to(storage.root / "real.png")
    assert storage.resolve("alias.png") == storage.root / "real.png"


def test_resolve_refuses_a_symlink_loop(storage: Storage) -> None:
    (storage.root / "loop").symlink_to(storage.root / "loop")
    with pytest.raises(UnsafePath):
        storage.resolve("loop/a.png")


def test_a_root_reached_through_a_symlink_works(tmp_path: Path) -> None:
    real = tmp_path / "volume"
    real.mkdir()
    (tmp_path / "data").symlink_to(real)
    storage = Storage(tmp_path / "data")
    assert storage.relative(tmp_path / "data" / "sweeps" / "a.png") == "sweeps/a.png"
    assert storage.resolve("sweeps/a.png") == real / "sweeps" / "a.png"


def test_relative_refuses_paths_outside_the_root(storage: Storage, tmp_path: Path) -> None:
    for path in (tmp_path / "other.png", storage.root / ".." / "other.png", storage.root):
        with pytest.raises(UnsafePath):
            storage.relative(path)


def test_hash_file_streams_size_and_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one 1 MiB block, not a multiple
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert hash_file(path) == Digest(len(data), hashlib.sha256(data).hexdigest())
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert hash_file(empty) == (0, hashlib.sha256(b"").hexdigest())


def test_write_stream_writes_and_hashes_in_one_pass(storage: Storage) -> None:
    path = storage.output_path(SWEEP, 1, 0, ".png")
    chunks = [b"abc", b"", b"def" * 1000]
    digest = storage.write_stream(path, iter(chunks))
    data = b"".join(chunks)
    assert path.read_bytes() == data
    assert digest == Digest(len(data), hashlib.sha256(data).hexdigest())
    assert digest == hash_file(path)
    assert list(path.parent.iterdir()) == [path]  # the temporary file was renamed, not copied


def test_write_async_stream_matches_the_sync_writer(storage: Storage) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"one", b"two"):
            yield chunk

    path = storage.output_path(SWEEP, 2, 0, ".mp4")
    digest = asyncio.run(storage.write_async_stream(path, chunks()))
    assert path.read_bytes() == b"onetwo"
    assert digest == hash_file(path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(storage: Storage) -> None:
    path = storage.output_path(SWEEP, 3, 0, ".png")
    storage.write_stream(path, [b"old"])

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("download dropped")

    with pytest.raises(ConnectionError):
        storage.write_stream(path, broken())
    assert path.read_bytes() == b"old"
    assert list(path.parent.iterdir()) == [path]


def test_writers_refuse_paths_outside_the_root(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        storage.write_stream(tmp_path / "elsewhere.png", [b"x"])
    assert not (tmp_path / "elsewhere.png").exists()


def test_atomic_file_is_readable_by_others_once_written(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "file.png"
    with atomic_file(path) as file:
        file.write(b"x")
        assert not path.exists()  # nothing visible until the write is complete
    assert path.read_bytes() == b"x"
    assert path.stat().st_mode & 0o777 == 0o644


def test_concurrent_writes_of_one_path_get_their_own_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "file.png"
    with atomic_file(path) as first, atomic_file(path) as second:
        first.write(b"first")
        second.write(b"second")
        assert len(list(tmp_path.iterdir())) == 2  # two temporaries, neither the file
    assert path.read_bytes() == b"first"  # the outer write is renamed last
    assert list(tmp_path.iterdir()) == [path]
