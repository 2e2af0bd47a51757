"""`make run`: the whole service on its embedded defaults, in the foreground, ready to use.

Migrates the state store (a SQLite file unless DATABASE_URL says otherwise), mints a key for
the local team, starts two ComfyUI stand-ins (unless COMFY_INSTANCES names real ones), a
Celery worker and the reconciler, serves the API, submits a small demo-noise sweep and
follows it to the end. Everything it started stops with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import httpx
import uvicorn
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.demo import ApiUnavailable, follow_demo
from app.logs.setup import configure_logging
from app.main import create_app
from app.metrics.exposition import prepare_directory
from app.queue import broker_url
from app.serve import server_options
from app.services import keys
from app.settings import PROJECT_ROOT, Settings
from app.supervisor import ChildExited, Supervisor

LOCAL_TEAM = "local"
LOCAL_KEY_LABEL = "make run"
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


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


def _metrics_directory(settings: Settings) -> Path:
    """The worker and reconciler write their metrics there and the API's /metrics merges
    them; emptied at each start, as a previous start's counters would add to this one's."""
    directory = settings.prometheus_multiproc_dir or PROJECT_ROOT / "var" / "metrics"
    prepare_directory(directory)
    return directory


def _local_key(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            # Each start retires the key the previous start printed: one live local key.
            keys.revoke_labelled(session, LOCAL_TEAM, LOCAL_KEY_LABEL)
            return keys.create_key(session, LOCAL_TEAM, LOCAL_KEY_LABEL).plaintext
    finally:
        engine.dispose()


def _local_queue_name(settings: Settings) -> str:
    """A queue of this stack's own: two checkouts on one machine share the local Redis, and
    with one queue name one stack's worker would take the other's runs."""
    digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:10]
    return f"comfy-sweep-{digest}"


def _start_standins(children: Supervisor, count: int = 2) -> str:
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
    _wait_until_up(urls, children)
    return ",".join(urls)


def _wait_until_up(urls: list[str], children: Supervisor, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        children.check()
        with suppress(httpx.HTTPError):
            if httpx.get(f"{pending[0]}/system_stats", timeout=1).status_code == 200:
                pending.pop(0)
                continue
        time.sleep(0.1)
    if pending:
        raise SystemExit(f"stand-in {pending[0]} did not start; see var/logs/")


def server_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """uvicorn as `python -m app.serve` runs it, less its worker processes: this one serves
    in a thread of the launcher."""
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # the launcher's own setup (main) also formats uvicorn's lines
        **server_options(settings),
    )


@contextmanager
def _serving(settings: Settings, host: str, port: int) -> Iterator[None]:
    server = uvicorn.Server(server_config(settings, host, port))
    # The launcher owns SIGINT and SIGTERM; uvicorn in a thread installs no handlers.
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"the API could not start on {host}:{port}; is the port taken?")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def _start_services(children: Supervisor, settings: Settings) -> None:
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
        "-n",
        f"{settings.queue_name}@%h",
    )
    children.start("reconciler", "workers.reconciler")


def _describe_broker(settings: Settings) -> str:
    url = settings.broker_url or ""
    if url.startswith("sqla+"):
        return f"embedded SQLite ({url.removeprefix('sqla+sqlite:///')})"
    return str(maybe_sanitize_url(url))


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _serve_until_stopped(children: Supervisor, settings: Settings, log_dir: Path) -> None:
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    key = _local_key(settings)
    with _serving(settings, host, port):
        base = f"http://{host}:{port}"
        _say(f"API: {base}")
        _say(f"API key: {key}")
        _say(f"Docs: {base}/docs   Logs: {log_dir}")
        _say(f"Broker: {_describe_broker(settings)}   Queue: {settings.queue_name}")
        try:
            follow_demo(base, key, children.check, _say)
            _say("Serving until stopped (Ctrl-C).")
            while True:
                children.check()
                time.sleep(0.5)
        finally:
            # The children wind down while the API finishes its last requests.
            children.terminate()


def main() -> None:
    # SIGTERM stops the launcher as Ctrl-C does: through the `finally` that stops the children.
    # SIGINT is set too: a shell starting us in the background leaves it ignored, and Python
    # then never raises KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    settings = Settings()
    configure_logging(settings, fallback="text")
    log_dir = PROJECT_ROOT / "var" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    _prepare_sqlite_dir(settings.database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    env["BROKER_URL"] = broker_url(settings)
    env[METRICS_DIR_VARIABLE] = str(_metrics_directory(settings))
    env.setdefault("QUEUE_NAME", _local_queue_name(settings))
    env.setdefault("LOG_FORMAT", "text")  # the children's logs in var/logs are for a person
    children = Supervisor(env, log_dir, PROJECT_ROOT)
    try:
        code = _run(children, settings, env, log_dir)
    finally:
        stopping = time.monotonic()
        children.stop()
        _say(f"Stopped everything it started in {time.monotonic() - stopping:.1f} s.")
    # Skip the interpreter's teardown: its final garbage collection of the API's objects took
    # seconds on a busy machine, after everything that matters has stopped.
    logging.shutdown()
    os._exit(code)


def _run(children: Supervisor, settings: Settings, env: dict[str, str], log_dir: Path) -> int:
    """Start the stack and serve until stopped; the exit code for the launcher."""
    try:
        if not settings.instances:
            env["COMFY_INSTANCES"] = _start_standins(children)
        settings = Settings(
            comfy_instances=env.get("COMFY_INSTANCES", ""),
            broker_url=env["BROKER_URL"],
            queue_name=env["QUEUE_NAME"],
            prometheus_multiproc_dir=env[METRICS_DIR_VARIABLE],
        )
        _start_services(children, settings)
        _serve_until_stopped(children, settings, log_dir)
    except ChildExited as exited:
        _say(exited.report())
        return 1
    except ApiUnavailable as error:
        _say(f"the API stopped answering: {error}; see {log_dir}")
        return 1
    except KeyboardInterrupt:
        _say("Stopping…")
    return 0


if __name__ == "__main__":
    main()
