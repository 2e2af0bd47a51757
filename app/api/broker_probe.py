"""Whether the Celery broker answers, asked at most once per `ttl_s`.

A sweep is the database's record and the reconciler re-sends any start message that was
lost, so a broker outage never loses one. Still, a caller should hear about the outage at
submission (503 with `Retry-After`) instead of getting a 201 for work nothing can start, and
`/readyz` should say the broker is down. The answer is cached so a burst of submissions
costs one round trip, not one each.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

log = logging.getLogger(__name__)


class BrokerProbe:
    def __init__(self, celery: Celery, ttl_s: float = 1.0, timeout_s: float = 1.0) -> None:
        self.celery, self.ttl_s, self.timeout_s = celery, ttl_s, timeout_s
        self._lock = threading.Lock()
        self._checked_at = -float("inf")
        self._answered = True

    def answers(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl_s:
                return self._answered
            self._answered = self._ask()
            self._checked_at = time.monotonic()
            return self._answered

    def _ask(self) -> bool:
        try:
            with self.celery.connection_for_write(connect_timeout=self.timeout_s) as connection:
                connection.ensure_connection(max_retries=1, timeout=self.timeout_s)
                client = getattr(connection.default_channel, "client", None)
                ping = getattr(client, "ping", None)
                if callable(ping):  # Redis: a live round trip, not only an open socket
                    ping()
        except Exception as error:  # kombu and its transports raise many kinds
            log.warning("broker_unreachable error=%s", type(error).__name__)
            return False
        return True
