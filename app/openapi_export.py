"""`make openapi`: writes the OpenAPI document to `openapi.json` at the repository root.

The checked-in file is what clients are generated from, and a test fails when it drifts from
the app. So the output depends on the code alone: settings come from their defaults, never
the environment or a `.env` file, no server URL is written, keys are sorted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.main import create_app
from app.settings import PROJECT_ROOT, Settings

DOCUMENT = PROJECT_ROOT / "openapi.json"


def openapi_document() -> dict[str, Any]:
    # `model_construct` takes the declared defaults without reading the environment; no
    # database is opened to build the document.
    settings = Settings.model_construct(database_url="sqlite://")
    return create_app(settings).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else DOCUMENT
    target.write_text(render(openapi_document()), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
