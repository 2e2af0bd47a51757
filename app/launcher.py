"""`make run`: the service on its embedded defaults, in the foreground, ready to use.

Migrates the state store (a SQLite file unless DATABASE_URL says otherwise), mints a key for
the local team, prints where the API is and the key, then serves until stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.main import create_app
from app.services import keys
from app.settings import Settings

LOCAL_TEAM = "local"
LOCAL_KEY_LABEL = "make run"


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


def main() -> None:
    settings = Settings()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    _prepare_sqlite_dir(settings.database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    key = _local_key(settings)
    print(f"API: http://{host}:{port}", flush=True)  # noqa: T201
    print(f"API key: {key}", flush=True)  # noqa: T201
    print(f"Docs: http://{host}:{port}/docs", flush=True)  # noqa: T201
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


if __name__ == "__main__":
    main()
