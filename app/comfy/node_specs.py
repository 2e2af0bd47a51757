"""The pool's node specs (`/object_info`) for the API's preflight, fetched synchronously
from the first instance that answers and cached for a while: a sweep is checked against
what the instances really offer (samplers, checkpoint files, bounds) before it is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from app.settings import InstanceConfig

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 5.0


class NodeSpecs:
    def __init__(self, instances: Sequence[InstanceConfig], ttl_s: float) -> None:
        self._urls = [i.url for i in instances]
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._specs: Mapping[str, Any] | None = None
        self._fetched_at = float("-inf")

    def current(self) -> Mapping[str, Any] | None:
        """Fresh specs, else the last ones seen, else None when no instance ever answered."""
        with self._lock:
            if time.monotonic() - self._fetched_at > self._ttl_s:
                fetched = self._fetch()
                if fetched is not None:
                    self._specs, self._fetched_at = fetched, time.monotonic()
            return self._specs

    def _fetch(self) -> Mapping[str, Any] | None:
        for url in self._urls:
            try:
                response = httpx.get(f"{url}/object_info", timeout=FETCH_TIMEOUT_S)
                response.raise_for_status()
                specs = response.json()
            except (httpx.HTTPError, ValueError) as error:
                reason = type(error).__name__
                log.warning("object_info_unavailable instance=%s error=%s", url, reason)
                continue
            if isinstance(specs, dict):
                return specs
        return None
