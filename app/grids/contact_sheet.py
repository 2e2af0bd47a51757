"""The contact sheet: one self-contained HTML page showing every run of a sweep as a card.

Pure string building from plain data (no database, no files): the caller hands in the sweep's
header and its cards, thumbnails already encoded, and gets the page back in pieces, one card
at a time, so a 10,000-run sheet streams instead of sitting in memory.

Safety, because prompts and error messages are user- or ComfyUI-controlled text:
- every such string travels only inside a JSON data island (`<script type="application/json">`)
  with `<`, `>` and `&` escaped as `\\u003c`..., so no value can close the element; the page's
  script builds the DOM from it with `textContent`, never `innerHTML`;
- the one value in markup, the title, goes through `html.escape`;
- the script and stylesheet are fixed files whose sha256 hashes `CONTENT_SECURITY_POLICY`
  pins, so nothing else can run, and images may come only from `data:` and `blob:` URLs.
The page loads nothing from anywhere but its own origin (no CDN).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class SheetFile:
    n: int
    kind: str
    mime: str
    url: str  # where the page fetches the full file (a signed link)


@dataclass(frozen=True, slots=True)
class SheetCard:
    index: int
    status: str
    attempts: int
    assignment: Mapping[str, Any]
    error: str | None  # "kind: message" of the last failure
    files: tuple[SheetFile, ...]
    thumbnail: bytes | None  # JPEG


@dataclass(frozen=True, slots=True)
class SheetHeader:
    sweep_id: str
    workflow: str
    status: str
    total: int
    created_at: str
    params: tuple[str, ...]  # in display order: axes first
    export_url: str
    expires_at: str  # when the links in the page stop working


def _asset(name: str) -> str:
    return resources.files("app.grids").joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


SCRIPT = _asset("contact_sheet.js")
STYLE = _asset("contact_sheet.css")
# Images only from data: (thumbnails) and blob: (full images fetched by the script); media
# and fetches from this origin only, which is where the signed file links point.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src {_csp_hash(SCRIPT)}",
        f"style-src {_csp_hash(STYLE)}",
        "img-src data: blob:",
        "media-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def render_sheet(header: SheetHeader, cards: Iterable[SheetCard]) -> Iterator[str]:
    """The page in pieces: head and controls, then one card's JSON at a time, then the script."""
    yield _head(header)
    yield '<script type="application/json" id="sheet-data">{"sweep":'
    yield island_json(_header_json(header))
    yield ',"runs":['
    for number, card in enumerate(cards):
        yield ("," if number else "") + island_json(_card_json(card))
    yield "]}</script>\n"
    yield f"<script>{SCRIPT}</script>\n</body>\n</html>\n"


def island_json(value: object) -> str:
    """JSON that is safe inside a `<script>` element: no `<`, `>` or `&` appear raw, so
    `</script>` or `<!--` in a prompt cannot end the element or change how it is parsed."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _head(header: SheetHeader) -> str:
    title = html.escape(f"{header.workflow} · sweep {header.sweep_id[:8]} · contact sheet")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        # An empty icon: otherwise the browser asks the API for /favicon.ico and logs a 404.
        '<link rel="icon" href="data:,">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        '<header id="top"></header>\n<nav id="controls"></nav>\n'
        '<main id="cards" aria-live="polite"></main>\n'
        '<div id="viewer" hidden></div>\n'
    )


def _header_json(header: SheetHeader) -> dict[str, Any]:
    return {
        "id": header.sweep_id,
        "workflow": header.workflow,
        "status": header.status,
        "total": header.total,
        "created_at": header.created_at,
        "params": list(header.params),
        "export_url": header.export_url,
        "expires_at": header.expires_at,
    }


def _card_json(card: SheetCard) -> dict[str, Any]:
    thumb = None
    if card.thumbnail is not None:
        thumb = "data:image/jpeg;base64," + base64.b64encode(card.thumbnail).decode()
    return {
        "index": card.index,
        "status": card.status,
        "attempts": card.attempts,
        "assignment": dict(card.assignment),
        "error": card.error,
        "files": [{"n": f.n, "kind": f.kind, "mime": f.mime, "url": f.url} for f in card.files],
        "thumb": thumb,
    }
