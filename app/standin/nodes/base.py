"""What node implementations see: the call (resolved inputs, runtime services) and value types.

IMAGE is a batch of Pillow frames; LATENT and the model-side values (MODEL, CLIP, VAE,
CONDITIONING, ...) are simulated: they carry the labels a rendered image shows (seed, steps,
cfg, sampler, prompt start), while the pixels come from the node's cache signature, which
already hashes every upstream input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from PIL import Image

from app.standin.graph import Graph, JsonObject

Labels = tuple[tuple[str, str], ...]
T = TypeVar("T")


class Interrupted(Exception):
    """ComfyUI's InterruptProcessingException: raised where the interrupt flag is checked."""


@dataclass(frozen=True)
class Images:
    frames: tuple[Image.Image, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size

    def __str__(self) -> str:
        width, height = self.size
        return f"<IMAGE batch={len(self.frames)} {width}x{height}>"


@dataclass(frozen=True)
class Masks:
    frames: tuple[Image.Image, ...]  # mode "L"

    def __str__(self) -> str:
        width, height = self.frames[0].size
        return f"<MASK batch={len(self.frames)} {width}x{height}>"


@dataclass(frozen=True)
class Latent:
    width: int  # in pixels, as EmptyLatentImage takes them
    height: int
    batch: int
    labels: Labels = ()
    source: Images | None = None  # pixels a VAEEncode started from

    def __str__(self) -> str:
        return f"<LATENT batch={self.batch} {self.width}x{self.height}>"


@dataclass(frozen=True)
class Simulated:
    """A MODEL, CLIP, VAE, CONDITIONING, NOISE, SAMPLER, SIGMAS, GUIDER, ... stand-in value."""

    kind: str
    labels: Labels = ()
    steps: int = 0  # SIGMAS: how many sampler steps they describe

    def __str__(self) -> str:
        return f"<{self.kind} {dict(self.labels)}>"


def merge_labels(*parts: Labels, **own: object) -> Labels:
    """Upstream labels, later ones winning, then this node's own."""
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(part)
    merged.update({key: str(value) for key, value in own.items()})
    return tuple(merged.items())


class NodeRuntime(Protocol):
    """Services the executor gives a running node."""

    @property
    def output_dir(self) -> Path: ...

    @property
    def temp_dir(self) -> Path: ...

    def load_model(self, folder: str, name: str, cost: float) -> None:
        """Pretend to read a model file: `cost` x checkpoint load time, not interruptible."""

    def sample(self, steps: int) -> None:
        """Pretend to run sampler steps, reporting `progress`; interruptible between steps."""


@dataclass(frozen=True)
class NodeCall:
    node_id: str
    class_type: str
    signature: str  # hex digest of this node's inputs and everything upstream
    inputs: dict[str, object]
    prompt: Graph = field(repr=False)
    extra_pnginfo: JsonObject | None
    runtime: NodeRuntime

    def value(self, name: str, kind: type[T], default: T | None = None) -> T:
        value = self.inputs.get(name, default)
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"{name}: expected {kind.__name__}, got bool")
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            raise TypeError(f"{name}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        return self.value(name, int, default)

    def real(self, name: str, default: float | None = None) -> float:
        return self.value(name, float, default)

    def text(self, name: str, default: str | None = None) -> str:
        return self.value(name, str, default)

    def flag(self, name: str, default: bool | None = None) -> bool:
        return self.value(name, bool, default)

    def images(self, name: str) -> Images:
        return self.value(name, Images)

    def latent(self, name: str) -> Latent:
        return self.value(name, Latent)

    def simulated(self, name: str, kind: str) -> Simulated:
        value = self.value(name, Simulated)
        if value.kind != kind:
            raise TypeError(f"{name}: expected {kind}, got {value.kind}")
        return value


@dataclass(frozen=True)
class NodeResult:
    outputs: tuple[object, ...] = ()
    ui: JsonObject | None = None


NodeFunction = Callable[[NodeCall], NodeResult]
