"""Writes a run's assignment as AUTOMATIC1111's "parameters" text, the infotext A1111 and
Forge store in PNGs and read back with "PNG Info" / "Send to txt2img".

Layout, as A1111's `processing.create_infotext` writes it: the prompt, then a
`Negative prompt: ...` line when there is one, then one line of `Key: value` pairs joined by
", ". Our parameter names map to A1111's keys; a parameter A1111 has no key for is written
under its own name, humanised, so nothing in the assignment is lost. Pure: it never reads
files or models (no model hashes), so the same assignment always gives the same text.

Choices A1111 leaves open:
- `Denoising strength` is left out at 1.0: A1111 never writes it for plain txt2img, and
  older versions turn hires fix on when they paste text that has it.
- `Model` and the LoRA tag use the file's base name without its extension, as A1111's
  `name_for_extra` does (`sd_xl_base_1.0.safetensors` → `sd_xl_base_1.0`).
- Keys without an A1111 name follow the mapped ones in name order, because stored
  assignments (JSONB) do not keep their key order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from app.domain.contracts import JsonValue
from app.domain.values import format_value

# Written in this order, A1111's own (Forge puts Distilled CFG Scale after CFG scale).
_SCALAR_KEYS: tuple[tuple[str, str], ...] = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("scheduler", "Schedule type"),
    ("cfg", "CFG scale"),
    ("guidance", "Distilled CFG Scale"),
    ("seed", "Seed"),
)
_MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")
# A1111's reader takes a key as `\w[\w \-/]+`; anything else in a name would break the line.
_KEY_UNSAFE = re.compile(r"[^\w \-/]+")
# Written in the prompt lines or under a fixed key whenever present, so never repeated.
_ALWAYS_CONSUMED = frozenset({"prompt", "negative", "lora", "checkpoint", "denoise"})


def infotext(assignment: Mapping[str, JsonValue]) -> str:
    """The A1111 "parameters" text of one run: prompt, negative, then `Key: value, ...`."""
    lines = [_prompt(assignment)]
    negative = assignment.get("negative")
    if negative:
        lines.append(f"Negative prompt: {_text(negative)}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in _pairs(assignment)))
    # As A1111 does: no leading blank line when there is no prompt.
    return "\n".join(lines).strip()


def quote(value: str) -> str:
    """A value as A1111 writes it: bare unless a comma, colon or newline makes it ambiguous;
    then a JSON string. Also quoted, unlike A1111, when its reader would change it: a leading
    quote (read as a quoted value) or surrounding spaces (stripped)."""
    if any(c in value for c in ",:\n") or value.startswith('"') or value != value.strip():
        return json.dumps(value, ensure_ascii=False)
    return value


def _prompt(assignment: Mapping[str, JsonValue]) -> str:
    prompt = _text(assignment.get("prompt") or "")
    lora = assignment.get("lora")
    if not lora:
        return prompt
    tag = f"<lora:{_file_stem(lora)}:{format_value(assignment.get('lora_strength', 1.0))}>"
    # A1111 reads LoRA tags anywhere in the prompt; appended, the user's text stays intact.
    return f"{prompt} {tag}" if prompt else tag


def _pairs(assignment: Mapping[str, JsonValue]) -> list[tuple[str, str]]:
    pairs = [(key, _text(assignment[name])) for name, key in _SCALAR_KEYS if name in assignment]
    composites = (
        ("Size", _size(assignment)),
        ("Model", _model(assignment)),
        ("Denoising strength", _denoise(assignment)),
    )
    pairs.extend((key, value) for key, value in composites if value is not None)
    rest = sorted(set(assignment) - _consumed(assignment))
    pairs.extend((_humanise(name), _text(assignment[name])) for name in rest)
    return pairs


def _consumed(assignment: Mapping[str, JsonValue]) -> set[str]:
    """The parameters already written under an A1111 key or in the prompt lines."""
    consumed = {name for name, _ in _SCALAR_KEYS} | _ALWAYS_CONSUMED
    if _size(assignment) is not None:
        consumed |= {"width", "height"}
    if assignment.get("lora"):
        consumed.add("lora_strength")  # without a LoRA it is kept, under its own name
    return consumed


def _size(assignment: Mapping[str, JsonValue]) -> str | None:
    if "width" not in assignment or "height" not in assignment:
        return None  # a lone width or height is written under its own name
    return f"{_text(assignment['width'])}x{_text(assignment['height'])}"


def _model(assignment: Mapping[str, JsonValue]) -> str | None:
    checkpoint = assignment.get("checkpoint")
    return None if checkpoint is None else _file_stem(checkpoint)


def _denoise(assignment: Mapping[str, JsonValue]) -> str | None:
    denoise = assignment.get("denoise")
    return None if denoise is None or denoise == 1 else _text(denoise)


def _file_stem(value: JsonValue) -> str:
    # ComfyUI names models by path under models/<kind>/, with either slash on Windows.
    name = re.split(r"[\\/]", _text(value))[-1]
    for extension in _MODEL_EXTENSIONS:
        if name.lower().endswith(extension):
            return name[: -len(extension)]
    return name


def _humanise(name: str) -> str:
    # `upscale_factor` → `Upscale factor`, in the manner of A1111's own `Hires steps`.
    words = " ".join(_KEY_UNSAFE.sub(" ", name.replace("_", " ")).split())
    key = words[:1].upper() + words[1:]
    return key if len(key) >= 2 else f"Param {key}".strip()


def _text(value: JsonValue) -> str:
    return value if isinstance(value, str) else format_value(value)
