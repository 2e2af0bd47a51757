"""Small videos of one solid colour, encoded with PyAV (the codecs its wheel ships), so tests
of poster frames need no `ffmpeg` binary and know exactly what the first frame shows."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# The encoder for each container the tests write; all ship in PyAV's wheel.
CODECS = {".mp4": "libx264", ".mov": "mpeg4", ".webm": "libvpx-vp9", ".mkv": "libx264"}


def solid_video(
    path: Path,
    color: tuple[int, int, int],
    size: tuple[int, int] = (320, 160),
    frames: int = 5,
) -> Path:
    """`frames` frames of `color` at `size` (width, height) written to `path`; the container
    follows the suffix."""
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(CODECS[path.suffix], rate=10)
        assert isinstance(stream, av.VideoStream)  # the codec is a video one
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        picture = np.full((height, width, 3), color, dtype=np.uint8)
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush the encoder's delayed frames
    return path
