"""`python -m workers.reconciler`: the reconciler loop as its own process."""

from __future__ import annotations

from app.logs.setup import configure_logging
from app.settings import Settings
from workers.reconciliation import run_forever
from workers.runtime import current_runtime


def main() -> None:
    configure_logging(Settings())
    run_forever(current_runtime())


if __name__ == "__main__":
    main()
