"""`python -m workers.metrics --port 9108`: the metrics of the worker processes on this host,
for farms whose workers run on other hosts than the API.

Each worker process (Celery's prefork children, the reconciler) started with
`PROMETHEUS_MULTIPROC_DIR` writes its values to that directory; this process serves them
merged, in Prometheus text format, at `http://<host>:<port>/metrics`. It reads no database:
the farm-wide gauges come from the API's `/metrics`. Start it with the same directory as the
workers, after emptying the directory and before starting them.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from prometheus_client import start_http_server
from prometheus_client.multiprocess import mark_process_dead

from app.logs.setup import configure_logging
from app.metrics.exposition import prepare_directory, scrape_registry
from app.settings import Settings

log = logging.getLogger(__name__)
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory() -> Path | None:
    value = os.environ.get(DIRECTORY_VARIABLE)
    return Path(value) if value else None


def mark_dead(pid: int) -> None:
    """A worker child exited: drop its live gauges' files (counters and histograms stay, so
    what it counted is still counted). Nothing to do outside multiprocess mode."""
    directory = metrics_directory()
    if directory is not None:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.metrics", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a scrape target
    parser.add_argument("--port", type=int, default=9108)
    parser.add_argument(
        "--clean", action="store_true", help="empty the directory first (before the workers)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    configure_logging(Settings())
    args = parse_args(argv)
    directory = metrics_directory()
    if directory is None:
        raise SystemExit(f"set {DIRECTORY_VARIABLE} to the workers' metrics directory")
    if args.clean:
        prepare_directory(directory)
    directory.mkdir(parents=True, exist_ok=True)
    start_http_server(args.port, args.host, registry=scrape_registry(directory, []))
    log.info("metrics_serving port=%s directory=%s", args.port, directory)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
