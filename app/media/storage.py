"""The one path guard for files under DATA_DIR, and how files get there: atomically, hashed
while they stream.

Every path served or written goes through `Storage`: `resolve` for paths read back from the
database, `output_path` to build new ones, `relative` to store them. A path that is
absolute, climbs with `..`, holds NUL or leads out of the root through a symlink raises
`UnsafePath`, so a bad row can never make the API read outside DATA_DIR. Writes go to a
temporary file in the target directory and are renamed over it (`os.replace`), so a reader
sees either the old file or the whole new one, never a partial download.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NamedTuple
from uuid import UUID

BLOCK_SIZE = 1024 * 1024

# What ComfyUI's savers write (images, animations, videos, audio, 3D). Scriptable formats
# (SVG, HTML) are deliberately absent: stored as .bin, they are never given a name a browser
# would render as a page.
SUFFIXES: Mapping[str, str] = {
    "image/png": ".png",
    "image/apng": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "image/tiff": ".tif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "audio/flac": ".flac",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "model/gltf-binary": ".glb",
}
UNKNOWN_SUFFIX = ".bin"
_ALLOWED_SUFFIXES = frozenset(SUFFIXES.values()) | {UNKNOWN_SUFFIX}
_SUFFIX_ALIASES = {".jpeg": ".jpg", ".tiff": ".tif"}
_KINDS = frozenset({"image", "video", "audio"})
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_temp_numbers = itertools.count()


class UnsafePath(ValueError):
    """A stored or given path that would lead outside the storage root."""


class Digest(NamedTuple):
    size: int
    sha256: str


def suffix_for_mime(mime: str) -> str:
    """The file suffix for a MIME type (`image/png` → `.png`); `.bin` when not whitelisted."""
    return SUFFIXES.get(_bare_mime(mime), UNKNOWN_SUFFIX)


def kind_for_mime(mime: str) -> str:
    """What an output is for display: `image`, `video`, `audio`, or `file` for the rest."""
    major = _bare_mime(mime).partition("/")[0]
    return major if major in _KINDS else "file"


def hash_file(path: Path) -> Digest:
    """Size and sha256 hex of a file, read in 1 MiB blocks so videos never sit in memory."""
    digest, size = hashlib.sha256(), 0
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(buffer):
            digest.update(view[:count])
            size += count
    return Digest(size, digest.hexdigest())


class HashingWriter:
    """A file being written that keeps its size and sha256 up to date with every write."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    @property
    def digest(self) -> Digest:
        return Digest(self._size, self._hash.hexdigest())


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write `path` through a temporary file beside it, renamed over it on success.

    On an exception the temporary file is removed and `path` is left as it was. Parent
    directories are created. Unguarded: callers outside this module pass paths they built
    with `Storage` or were given by it.
    """
    fd, temp = create_temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            # The database row records this sha256; the bytes must be on disk before it.
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def create_temp_beside(path: Path) -> tuple[int, str]:
    """A new hidden file beside `path`, mode 0644 whatever the umask (the API may run as
    another user than the worker that wrote it). Its name needs no randomness: the pid and
    a counter make it unique, and O_EXCL refuses any file already there. The directory is
    only created when the open finds it missing, which saves a worker the mkdir calls of
    every file it writes into a directory that exists."""
    temp = f"{path.parent}/.{path.name}.{os.getpid()}.{next(_temp_numbers)}.part"
    try:
        fd = os.open(temp, _TEMP_FLAGS, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, _TEMP_FLAGS, 0o600)
    try:
        os.fchmod(fd, 0o644)
    except BaseException:
        os.close(fd)
        os.unlink(temp)
        raise
    return fd, temp


class Storage:
    """Files under one root directory (DATA_DIR), addressed by paths relative to it."""

    def __init__(self, root: Path) -> None:
        # Resolved once, so the root itself may be a symlink (to a data volume, say).
        self.root = root.resolve()

    def output_path(self, sweep_id: UUID, run_index: int, position: int, suffix: str) -> Path:
        """Where output `position` of run `run_index` lives; the suffix is whitelisted.

        The layout is `sweeps/<sweep>/runs/<index:06d>/<position><suffix>`: one small
        directory per run, named so a listing sorts in run order. Directories are not created
        here; the writers below create them.
        """
        if run_index < 0 or position < 0:
            raise ValueError(f"run index {run_index} and position {position} must be >= 0")
        name = f"{position}{_allowed_suffix(suffix)}"
        return self.root / "sweeps" / str(sweep_id) / "runs" / f"{run_index:06d}" / name

    def resolve(self, relative: str) -> Path:
        """The real path of a stored relative path, or `UnsafePath` if it leaves the root."""
        pure = _checked_relative(relative)
        try:
            # strict=False: a missing file is the caller's 404, not a path error.
            candidate = (self.root / pure).resolve()
        except (OSError, RuntimeError) as error:  # symlink loops: RuntimeError before 3.13
            raise UnsafePath(f"cannot resolve {relative!r}: {error}") from error
        if candidate == self.root or not candidate.is_relative_to(self.root):
            raise UnsafePath(f"{relative!r} leads outside the storage root")
        return candidate

    def relative(self, path: Path) -> str:
        """The string to store for `path`: relative to the root, with forward slashes."""
        absolute = Path(os.path.abspath(path))
        if not absolute.is_relative_to(self.root):
            absolute = absolute.resolve()  # given through another name of the root
        if not absolute.is_relative_to(self.root):
            raise UnsafePath(f"{str(path)!r} is outside the storage root")
        text = absolute.relative_to(self.root).as_posix()
        self.resolve(text)  # the guard reads will apply: no symlink may lead it out
        return text

    @contextmanager
    def open_atomic(self, path: Path) -> Iterator[HashingWriter]:
        """Write `path` atomically, hashing as it goes; `writer.digest` once written."""
        self.relative(path)
        with atomic_file(path) as file:
            yield HashingWriter(file)

    def write_stream(self, path: Path, chunks: Iterable[bytes]) -> Digest:
        """Write `chunks` to `path` atomically; returns the written size and sha256."""
        with self.open_atomic(path) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return writer.digest

    async def write_async_stream(self, path: Path, chunks: AsyncIterable[bytes]) -> Digest:
        """As `write_stream`, for an async download (httpx's `aiter_bytes`)."""
        with self.open_atomic(path) as writer:
            async for chunk in chunks:
                # Plain blocking writes: one chunk to the page cache is microseconds.
                writer.write(chunk)
        return writer.digest


def _bare_mime(mime: str) -> str:
    return mime.partition(";")[0].strip().lower()


def _allowed_suffix(suffix: str) -> str:
    normal = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
    normal = _SUFFIX_ALIASES.get(normal, normal)
    return normal if normal in _ALLOWED_SUFFIXES else UNKNOWN_SUFFIX


def _checked_relative(relative: str) -> PurePosixPath:
    # Refused before touching the file system: these never come from `relative` above.
    if not relative or "\x00" in relative or "\\" in relative:
        raise UnsafePath(f"{relative!r} is empty or holds NUL or a backslash")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise UnsafePath(f"{relative!r} is absolute or climbs with '..'")
    return pure
