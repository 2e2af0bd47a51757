"""The stand-in as a real subprocess on a free port, talked to with plain httpx and websockets.

- `standin`: one process shared by a test module (fast model costs); tests keep their prompts
  apart with unique filename prefixes and sizes, so they do not depend on each other's cache.
- `start_standin`: a factory for tests that need their own process (CLI faults, `die`).
Each process is killed at the end of its scope; its log is shown if it fails to start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.standin_process import Standin, launch


@pytest.fixture
def start_standin(tmp_path: Path) -> Iterator[Callable[..., Standin]]:
    with ExitStack() as stack:
        counter = iter(range(1000))

        def start(*args: str) -> Standin:
            instance = launch(tmp_path / f"standin-{next(counter)}", *args)
            stack.callback(instance.stop)
            return instance

        yield start


@pytest.fixture
def http(standin: Standin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.base_url, timeout=10.0) as client:
        yield client
