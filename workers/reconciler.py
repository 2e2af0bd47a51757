"""`python -m workers.reconciler`: the reconciler loop as its own process."""

from __future__ import annotations

from app.logs.setup import configure_logging
from app.settings import Settings
from workers.reconciliation import run_forever
from workers.runtime import current_runtime
from workers.webhook_sender import start_sender


def main() -> None:
    configure_logging(Settings())
    runtime = current_runtime()
    # Its own thread: a slow receiver never delays a reconcile pass, nor a pass a webhook.
    start_sender(runtime.sessions, runtime.settings)
    run_forever(runtime)


if __name__ == "__main__":
    main()
