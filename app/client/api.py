"""The API's routes as methods: JSON in, JSON out, files streamed to disk, every error as one
`ApiError` carrying the API's own answer.

Retrying is safe by construction: reads are repeatable, and every POST carries an
`Idempotency-Key` that its retries reuse, so the API does the work once however often the
request reaches it. The key is sent only in the Authorization header, never logged or shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx

from app.client.config import ClientConfig

ATTEMPTS = 4
BACKOFF_S = 0.5
MAX_RETRY_AFTER_S = 5.0
RETRIED_STATUSES = frozenset({502, 503, 504})
PAGE_LIMIT = 500
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ApiError(Exception):
    """The API refused a request (`status` > 0) or could not be reached (`status` 0)."""

    def __init__(self, status: int, method: str, path: str, detail: Any) -> None:
        super().__init__(f"{method} {path}: {status} {detail}")
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail

    def document(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "method": self.method,
            "path": self.path,
            "detail": self.detail,
        }


class SweepApi:
    """One connection to the API, with the caller's key."""

    def __init__(self, config: ClientConfig, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {config.key}"} if config.key else {}
        self.base_url = config.url
        self.http = httpx.Client(
            base_url=config.url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SweepApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        return self._json("POST", "/v1/sweeps", json=body, idempotency_key=idempotency_key)

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/sweeps/{sweep_id}")

    def runs(self, sweep_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """Every run of the sweep (all pages), by index; only those in `status` if given."""
        runs: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"offset": len(runs), "limit": PAGE_LIMIT}
            if status:
                params["status"] = status
            page = self._json("GET", f"/v1/sweeps/{sweep_id}/runs", params=params)
            runs.extend(page["items"])
            if not page["items"] or len(runs) >= page["total"]:
                return runs

    def act(self, sweep_id: str, action: str) -> dict[str, Any]:
        """`cancel`, `pause` or `resume`: the sweep as it is afterwards."""
        return self._json("POST", f"/v1/sweeps/{sweep_id}/{action}")

    def grids(self, sweep_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/sweeps/{sweep_id}/grids")

    def workflows(self) -> list[dict[str, Any]]:
        workflows: list[dict[str, Any]] = []
        while True:
            params = {"offset": len(workflows), "limit": PAGE_LIMIT}
            page = self._json("GET", "/v1/workflows", params=params)
            workflows.extend(page["items"])
            if not page["items"] or len(workflows) >= page["total"]:
                return workflows

    def download(self, path: str, target: Path, params: dict[str, Any] | None = None) -> int:
        """Streams the answer to `target` (through a temporary file beside it, so a broken
        download never leaves a truncated file under the real name); returns its size."""
        partial = target.with_name(f".{target.name}.part")
        try:
            with self._stream("GET", path, params) as response, partial.open("wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target.stat().st_size

    @contextmanager
    def _stream(
        self, method: str, path: str, params: dict[str, Any] | None
    ) -> Iterator[httpx.Response]:
        try:
            with self.http.stream(method, path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise refusal(method, path, response)
                yield response
        except httpx.TransportError as error:
            raise _unreachable(method, path, self.base_url, error) from None

    def _json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {}
        if method != "GET":
            headers["Idempotency-Key"] = idempotency_key or uuid4().hex
        response = self.send(method, path, json=json, params=params, headers=headers)
        if response.status_code >= 400:
            raise refusal(method, path, response)
        answer = response.json()
        if not isinstance(answer, dict):
            raise ApiError(response.status_code, method, path, "the answer is not a JSON object")
        return answer

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The request, retried on transport errors and on answers that say "try again"."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                if attempt == ATTEMPTS:
                    raise _unreachable(method, path, self.base_url, error) from None
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
                continue
            if attempt == ATTEMPTS or not _says_retry(response):
                return response
            time.sleep(_retry_after(response, BACKOFF_S * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def _says_retry(response: httpx.Response) -> bool:
    # 409 with Retry-After: another request holds the same Idempotency-Key right now.
    in_use = response.status_code == 409 and "Retry-After" in response.headers
    return response.status_code in RETRIED_STATUSES or in_use


def _retry_after(response: httpx.Response, fallback: float) -> float:
    try:
        return min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER_S)
    except (KeyError, ValueError):
        return fallback


def refusal(method: str, path: str, response: httpx.Response) -> ApiError:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text[:500] or response.reason_phrase
    return ApiError(response.status_code, method, path, detail)


def _unreachable(method: str, path: str, base_url: str, error: Exception) -> ApiError:
    return ApiError(0, method, path, f"cannot reach the API at {base_url}: {error!r}")


def error_lines(error: ApiError) -> list[str]:
    """The error for a person: the API's JSON answer, then one line per problem naming
    its field."""
    lines = [json.dumps(error.document())]
    if isinstance(error.detail, list):
        for problem in error.detail:
            if isinstance(problem, dict):
                where = ".".join(str(part) for part in problem.get("loc", [])) or "(request)"
                lines.append(f"  {where}: {problem.get('msg', problem)}")
    return lines
