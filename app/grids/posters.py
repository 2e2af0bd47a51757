"""A video's poster frame (its first picture) as a Pillow image, decoded in process by PyAV.

PyAV's wheels carry their own FFmpeg libraries, so any machine that installed the project
decodes videos; there is no `ffmpeg` binary to find or spawn. Only the file itself is read,
through a Python file object, by the one demuxer its suffix names: a `.mp4` that is really
an HLS playlist or a concat list must never make FFmpeg fetch URLs or open other files.
Decoding stops at the first frame, within a packet and a time budget, and a frame whose
size passes the caller's pixel limit is refused before it is converted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import av
import av.error
from PIL import Image

# Each video suffix with the one demuxer that may read it (FFmpeg's names).
VIDEO_FORMATS: Mapping[str, str] = {
    ".mp4": "mov",
    ".m4v": "mov",
    ".mov": "mov",
    ".webm": "matroska",
    ".mkv": "matroska",
}  # GIF and animated WebP are images: Pillow decodes them, transparency and all
# The first picture comes within a few packets; audio interleaved before it adds a few
# hundred at most. Past either budget the file is treated as undecodable, not waited on.
MAX_PACKETS = 2_000
TIMEOUT_S = 20.0


class PosterUnavailable(Exception):
    """The video has no frame to show: unknown format, corrupt, no video stream, too large."""


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_FORMATS


def poster_frame(path: Path, max_pixels: int, timeout_s: float = TIMEOUT_S) -> Image.Image:
    """The first frame of the video at `path` as an RGB image. Raises `PosterUnavailable`
    with a sentence for a placeholder."""
    demuxer = VIDEO_FORMATS.get(path.suffix.lower())
    if demuxer is None:
        raise PosterUnavailable(f"{path.suffix or 'no suffix'} is not a video format")
    try:
        with path.open("rb") as file, av.open(file, mode="r", format=demuxer) as container:
            if not container.streams.video:
                raise PosterUnavailable("the file has no video stream")
            stream = container.streams.video[0]
            _refuse_oversized(stream.width, stream.height, max_pixels)  # before any decoding
            stream.thread_count = 1  # one frame: threads would only hold more of them
            started = time.monotonic()
            for packets, packet in enumerate(container.demux(stream), start=1):
                for frame in packet.decode():
                    # The header may understate it: a stream can change size mid-way.
                    _refuse_oversized(frame.width, frame.height, max_pixels)
                    return _to_image(frame)
                if packets >= MAX_PACKETS or time.monotonic() - started > timeout_s:
                    raise PosterUnavailable("no frame within the decoding budget")
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise PosterUnavailable(f"cannot be decoded ({type(error).__name__})") from error
    raise PosterUnavailable("the video has no frames")


def _refuse_oversized(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise PosterUnavailable(f"{width}×{height} is over {max_pixels:,} pixels")


def _to_image(frame: av.VideoFrame) -> Image.Image:
    # As `VideoFrame.to_image` does (it has no type hints): rows of packed RGB, each padded to
    # the plane's line size, read straight into Pillow.
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    size = (rgb.width, rgb.height)
    return Image.frombuffer("RGB", size, bytes(plane), "raw", "RGB", plane.line_size, 1)
