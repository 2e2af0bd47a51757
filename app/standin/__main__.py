"""Entry point: `python -m app.standin --port 8188 [--output-dir DIR] [--faults SPEC] ...`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from app.standin.config import parse_config
from app.standin.server import create_app


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(config)
    sys.stderr.write(
        f"ComfyUI stand-in on http://{config.host}:{config.port} output={config.output_dir}\n"
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        ws="websockets-sansio",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
