"""`make run`: the whole service on its embedded defaults, in the foreground, ready to use.

Migrates the state store (a SQLite file unless DATABASE_URL says otherwise), mints a key for
the local team, starts two ComfyUI stand-ins (unless COMFY_INSTANCES names real ones), a
Celery worker and the reconciler, serves the API, submits a small demo-noise sweep and
follows it to the end. Everything it started stops with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy.engine import make_url

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.main import create_app
from app.queue import broker_url
from app.services import keys
from app.settings import PROJECT_ROOT, Settings

LOCAL_TEAM = "local"
LOCAL_KEY_LABEL = "make run"
DEMO_SWEEP = {
    "workflow": "demo-noise",
    "base": {"width": 256, "height": 256, "color": 3355443, "blur_radius": 9},
    "axes": [
        {"param": "sigma", "values": "0.5-4.5 (+2)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "seeds": {"count": 2, "start": 100},
}


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the launcher's output is for a person


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare_sqlite_dir(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _local_key(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            # Each start retires the key the previous start printed: one live local key.
            keys.revoke_labelled(session, LOCAL_TEAM, LOCAL_KEY_LABEL)
            return keys.create_key(session, LOCAL_TEAM, LOCAL_KEY_LABEL).plaintext
    finally:
        engine.dispose()


class Children:
    """The processes this launcher started; all stopped when it stops."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir, self.processes = env, log_dir, list[subprocess.Popen[bytes]]()

    def start(self, name: str, *args: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        command = [sys.executable, "-m", *args]
        self.processes.append(
            # Our own modules with fixed arguments; nothing here comes from a request.
            subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=log)  # noqa: S603
        )

    def stop(self) -> None:
        for process in self.processes:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _start_standins(children: Children, count: int = 2) -> str:
    urls = []
    for n in range(count):
        port = _free_port()
        output = PROJECT_ROOT / "var" / f"standin-{n}" / "output"
        children.start(
            f"standin-{n}",
            "app.standin",
            "--port",
            str(port),
            "--output-dir",
            str(output),
            "--checkpoint-load-ms",
            "500",
            "--step-ms",
            "10",
        )
        urls.append(f"http://127.0.0.1:{port}")
    _wait_until_up(urls)
    return ",".join(urls)


def _wait_until_up(urls: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if httpx.get(f"{pending[0]}/system_stats", timeout=1).status_code == 200:
                pending.pop(0)
                continue
        time.sleep(0.1)
    if pending:
        raise SystemExit(f"stand-in {pending[0]} did not start; see var/logs/")


@contextmanager
def _serving(settings: Settings, host: str, port: int) -> Iterator[None]:
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _follow_demo(base: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(f"{base}/v1/sweeps", json=DEMO_SWEEP, headers=headers, timeout=30)
    created.raise_for_status()
    sweep_url = f"{base}/v1/sweeps/{created.json()['id']}"
    shown = ""
    for _ in range(1200):
        sweep = httpx.get(sweep_url, headers=headers, timeout=10).json()
        line = f"demo sweep: {sweep['status']} {sweep['progress']:.0%} {sweep['counts']}"
        if line != shown:
            _say(line)
            shown = line
        if sweep["status"] in ("succeeded", "partial", "failed", "cancelled"):
            break
        time.sleep(0.5)
    _say(f"Demo: {sweep_url}")
    _say(f"Grid: {sweep_url}/grid   (with the API key; pages: {sweep_url}/grids)")
    link = httpx.get(f"{sweep_url}/contact-sheet-link", headers=headers, timeout=10)
    if link.status_code == 200:
        _say(f"Contact sheet: {base}{link.json()['url']}   (signed link, opens in a browser)")


def _wait_for_stop() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def main() -> None:
    settings = Settings()
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    log_dir = PROJECT_ROOT / "var" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    _prepare_sqlite_dir(settings.database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    env["BROKER_URL"] = broker_url(settings)
    children = Children(env, log_dir)
    try:
        if not settings.instances:
            env["COMFY_INSTANCES"] = _start_standins(children)
        settings = Settings(
            comfy_instances=env.get("COMFY_INSTANCES", ""), broker_url=env["BROKER_URL"]
        )
        children.start(
            "worker",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={settings.worker_concurrency}",
            "-Q",
            settings.queue_name,
        )
        children.start("reconciler", "workers.reconciler")
        key = _local_key(settings)
        with _serving(settings, host, port):
            base = f"http://{host}:{port}"
            _say(f"API: {base}")
            _say(f"API key: {key}")
            _say(f"Docs: {base}/docs   Logs: {log_dir}")
            _follow_demo(base, key)
            _say("Serving until stopped (Ctrl-C).")
            _wait_for_stop()
    finally:
        children.stop()


if __name__ == "__main__":
    main()
