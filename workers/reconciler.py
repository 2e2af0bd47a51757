"""`python -m workers.reconciler`: the reconciler loop as its own process."""

from __future__ import annotations

import logging

from workers.reconciliation import run_forever
from workers.runtime import current_runtime


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_forever(current_runtime())


if __name__ == "__main__":
    main()
