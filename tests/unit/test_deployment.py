"""The deployment files a team runs: docker-compose.yml, Dockerfile, .dockerignore, .env.example.

No Docker daemon is needed: the files are parsed and their properties checked, so a change
that would make the stack race, leak a secret or build from unpinned dependencies fails here.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PROCESSES = ("api", "worker", "reconciler")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|(^|_)KEY($|_)")
# `${VAR}`, `${VAR:?message}` or `${VAR?message}`: the value comes from the environment, with
# no default (`${VAR:-sweep}` would be a literal password again).
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}")
ANY_REFERENCE = re.compile(r"\$\{[^}]*\}")
# `$$` is an escaped dollar left to the container's shell, not a compose variable.
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)")
URL_PASSWORD = re.compile(r"://[^/@:]*:(?P<password>[^@]*)@")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def strings(value: object) -> Iterator[str]:
    """Every string in a parsed YAML tree, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def masked_reference(match: re.Match[str]) -> str:
    """A reference without `:` or `@`, so a URL around it parses: SECRET if it has no default."""
    return "SECRET" if REFERENCE.fullmatch(match[0]) else "x"


def compose_variables() -> set[str]:
    names = set()
    for text in strings(compose()):
        for match in INTERPOLATION.finditer(text):
            name = match.group(1) or match.group(2)
            if name:
                names.add(name)
    return names


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> str:
    value = service.get("command", "")
    return " ".join(value) if isinstance(value, list) else str(value)


def one_shot(all_services: dict[str, dict[str, Any]]) -> set[str]:
    """Services others wait to see finish, rather than to see healthy or started."""
    return {
        name
        for service in all_services.values()
        for name, condition in (service.get("depends_on") or {}).items()
        if isinstance(condition, dict)
        and condition.get("condition") == "service_completed_successfully"
    }


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not NAME=value"
            values[name.strip()] = value.strip()
    return values


def ignore_patterns(path: Path) -> set[str]:
    """Lines of an ignore file, without comments and with `/` and `**/` trimmed."""
    patterns = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.add(line.removeprefix("**/").strip("/"))
    return patterns


def excluded(path: str, patterns: set[str]) -> bool:
    """Whether an ignore pattern matches the path or a folder it sits in (negations aside)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(p, pattern) for p in [*prefixes, *parts] for pattern in patterns)


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        assert stages, f"Dockerfile: {instruction} before the first FROM"
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def lock_requirements(path: Path) -> dict[str, str]:
    """A pip-compile lock's requirements: normalized name → the requirement line."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    found = {}
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            found[normalized(requirement_name(line))] = line
    return found


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def seconds(duration: str) -> float:
    """A compose duration such as `60s`, `1m30s` or `90`."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    if duration.isdigit():
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"unreadable duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_a_one_shot_migrate_service_brings_the_schema_to_head() -> None:
    migrate = services().get("migrate")
    assert migrate is not None, "docker-compose.yml has no migrate service"
    assert command(migrate) == "alembic upgrade head"
    # PyYAML reads an unquoted `no` as False; compose wants the string.
    restart = migrate.get("restart", "no")
    assert restart == "no" or str(restart).startswith("on-failure"), (
        f"migrate: restart {restart!r} would rerun a finished migration forever"
    )


@pytest.mark.parametrize("name", SERVICE_PROCESSES)
def test_service_processes_start_only_after_the_migration_succeeded(name: str) -> None:
    depends_on = services()[name].get("depends_on") or {}
    assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a list"
    assert depends_on.get("migrate") == {"condition": "service_completed_successfully"}, (
        f"{name} does not wait for migrate to complete successfully"
    )


def test_the_api_serves_without_migrating() -> None:
    # Several API replicas each migrating at start would race on the same revision.
    api_command = command(services()["api"])
    assert api_command.startswith("python -m app.serve "), f"the api's command: {api_command!r}"
    assert "alembic" not in api_command
    cmd = [args for stage in dockerfile_stages()[-1:] for op, args in stage if op == "CMD"]
    assert cmd, "the image has no default CMD"
    assert "alembic" not in cmd[-1], f"the image's CMD migrates: {cmd[-1]}"


def test_the_image_and_compose_serve_the_api_through_app_serve() -> None:
    # app.serve passes the overload guards from Settings to uvicorn; a bare `uvicorn` command
    # would serve without them.
    cmd = [args for stage in dockerfile_stages()[-1:] for op, args in stage if op == "CMD"]
    assert json.loads(cmd[-1])[:3] == ["python", "-m", "app.serve"]
    assert command(services()["api"]).startswith("python -m app.serve ")


def test_every_long_running_service_restarts_unless_stopped() -> None:
    all_services = services()
    long_running = set(all_services) - one_shot(all_services)
    assert {"postgres", "redis", *SERVICE_PROCESSES} <= long_running
    for name in sorted(long_running):
        restart = all_services[name].get("restart")
        assert restart in ("unless-stopped", "always"), f"{name}: restart is {restart!r}"


def test_the_worker_has_time_for_a_warm_shutdown() -> None:
    worker = services()["worker"]
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(str(worker.get("stop_grace_period", "10s"))) >= 60


def test_no_secret_is_written_into_the_compose_file() -> None:
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert REFERENCE.fullmatch(value), f"{name}: {key} is a literal, not ${{VAR}}"
            # References may hold `:` themselves (`${POSTGRES_USER:-sweep}`): mask them first.
            masked = ANY_REFERENCE.sub(masked_reference, value)
            url = URL_PASSWORD.search(masked)
            if url:
                assert url["password"] == "SECRET", f"{name}: {key} embeds a literal password"


def test_postgres_password_is_required() -> None:
    # `:?` makes compose refuse to start without it, instead of running with an empty one.
    password = environment(services()["postgres"])["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", password), (
        f"POSTGRES_PASSWORD is {password!r}, not ${{POSTGRES_PASSWORD:?message}}"
    )


def test_every_variable_compose_reads_is_documented_in_env_example() -> None:
    missing = compose_variables() - set(env_example())
    assert not missing, f".env.example does not list {sorted(missing)}"


def test_env_example_holds_no_secret_and_env_is_never_committed() -> None:
    # Empty rather than a sample value: a copied file then fails to start instead of running
    # with a password everyone who read this repository knows.
    filled = {k: v for k, v in env_example().items() if SECRET_NAME.search(k) and v}
    assert not filled, f".env.example gives values for secrets: {sorted(filled)}"
    assert ".env" in ignore_patterns(ROOT / ".gitignore")


def test_the_build_context_leaves_out_local_state_and_keeps_what_the_image_copies() -> None:
    ignored = ignore_patterns(ROOT / ".dockerignore")
    assert {".git", ".venv", "var", ".env"} <= ignored
    for stage in dockerfile_stages():
        for op, args in stage:
            if op == "COPY" and "--from=" not in args:
                for source in args.split()[:-1]:
                    assert not excluded(source, ignored), f".dockerignore drops {source}"
                    assert (ROOT / source).exists(), f"the Dockerfile copies missing {source}"


def test_the_image_is_built_from_the_hashed_lock_and_runs_as_a_non_root_user() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the build tools must stay out of the final image"
    builder, final = stages[:-1], stages[-1]
    runs = [args for stage in builder for op, args in stage if op == "RUN"]
    assert any(
        "--require-hashes" in run and "-r requirements/runtime.txt" in run for run in runs
    ), "no `pip install --require-hashes -r requirements/runtime.txt` in a build stage"
    assert final[0][1].split()[0] == "python:3.11-slim"
    assert any(op == "COPY" and "--from=" in a and "/opt/venv" in a for op, a in final)
    users = [args for op, args in final if op == "USER"]
    assert users, "the final stage runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_runtime_lock_is_hashed_and_covers_every_dependency() -> None:
    lock = ROOT / "requirements" / "runtime.txt"
    assert lock.is_file(), (
        "requirements/runtime.txt is missing: the image installs only from it "
        "(pip-compile --generate-hashes --allow-unsafe -o requirements/runtime.txt pyproject.toml)"
    )
    pinned = lock_requirements(lock)
    unhashed = sorted(n for n, line in pinned.items() if "==" not in line or "--hash=" not in line)
    assert not unhashed, f"requirements/runtime.txt pins without a hash: {unhashed}"
    # The image installs with --no-deps and builds the project with --no-build-isolation, so a
    # dependency or build tool missing from the lock is missing from the image.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {normalized(requirement_name(d)) for d in project["project"]["dependencies"]}
    needed.add("setuptools")
    missing = needed - set(pinned)
    assert not missing, f"requirements/runtime.txt lacks {sorted(missing)}"


def test_the_redis_transport_s_own_dependencies_are_declared() -> None:
    # kombu's Redis transport imports `packaging`, which only its `redis` extra brings; with
    # plain `celery` a runtime-only install (the image, `make install`) has no working worker.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    celery = [d for d in project["project"]["dependencies"] if requirement_name(d) == "celery"]
    assert celery, "pyproject.toml does not depend on celery"
    assert "redis" in Requirement(celery[0]).extras, f"{celery[0]!r} is not celery[redis]"
