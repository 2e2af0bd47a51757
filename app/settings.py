"""Every setting of the service, read once from the environment and validated at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain.tags import MAX_INSTANCE_TAGS, bad_tag
from app.domain.webhook_schedule import DEFAULT_RETRY_WAITS_S, parse_retry_waits
from app.domain.webhook_targets import TargetPolicy, parse_policy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Beyond a run's timeout, what a task may still hold its message for: downloading and
# recording outputs, and a retry's countdown (at most 30 s).
VISIBILITY_MARGIN_S = 3600.0


@dataclass(frozen=True)
class InstanceConfig:
    url: str
    tags: tuple[str, ...] = ()


def parse_instances(text: str) -> tuple[InstanceConfig, ...]:
    """`http://gpu1:8188#sdxl+fast, http://gpu2:8188` → instances with their tags."""
    instances = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        url, _, tags = item.partition("#")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"COMFY_INSTANCES entry {item!r} is not an http(s) base URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"COMFY_INSTANCES entry {item!r} must be a plain base URL")
        instances.append(InstanceConfig(url.rstrip("/"), _parse_tags(item, tags)))
    urls = [i.url for i in instances]
    if len(set(urls)) != len(urls):
        raise ValueError("COMFY_INSTANCES lists an instance twice")
    return tuple(instances)


def _parse_tags(item: str, text: str) -> tuple[str, ...]:
    tags = tuple(filter(None, text.split("+")))
    for tag in tags:
        why = bad_tag(tag)
        if why is not None:
            raise ValueError(f"COMFY_INSTANCES entry {item!r}: {why}")
    if len(set(tags)) > MAX_INSTANCE_TAGS:
        raise ValueError(f"COMFY_INSTANCES entry {item!r} has more than {MAX_INSTANCE_TAGS} tags")
    return tags


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'comfy-sweep.db'}",
        description="SQLAlchemy URL of the state store; Postgres in production.",
    )
    redis_url: str | None = Field(
        default=None, description="Celery broker; unset means local Redis or an embedded broker."
    )
    broker_url: str | None = Field(
        default=None, description="Overrides the broker choice (REDIS_URL, local Redis, SQLite)."
    )
    queue_name: str = Field(default="comfy-sweep", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    comfy_instances: str = Field(
        default="", description="Comma-separated ComfyUI base URLs, each optionally `url#tag+tag`."
    )
    data_dir: Path = Field(default=PROJECT_ROOT / "var" / "data")
    workflows_dir: Path = Field(default=PROJECT_ROOT / "workflows")
    params_dir: Path = Field(default=PROJECT_ROOT / "params")
    auth_enabled: bool = Field(default=True, description="Set AUTH_ENABLED=false only locally.")
    max_runs_per_sweep: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    # Each admitted request holds a worker thread, and every thread competes for the GIL with
    # the event loop that parses, routes and answers: on two cores bench.load recovered from
    # its 2x burst in 2.2 s with 8 and took 7.7 s with 32, steady reads alike.
    api_concurrency: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Requests the API serves at once; the database pool has as many "
        "connections. Others wait in line up to API_QUEUE_TIMEOUT_S, then get a 503.",
    )
    api_queue_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # Above the connections a stalled API collects from a crowd of pollers: past it /healthz
    # is refused too (bench.load's 2,000 requests in flight got 503s on /healthz at 1024).
    api_limit_concurrency: int = Field(
        default=4096,
        ge=2,
        description="Open connections (idle keep-alive ones too) or requests in progress "
        "per API process above which uvicorn answers 503 itself, before the app runs.",
    )
    # uvicorn's own default; at 256, bench.load's clients met connection errors in stalls.
    api_backlog: int = Field(
        default=2048, ge=16, le=65535, description="Connections the kernel queues unaccepted."
    )
    api_workers: int = Field(default=1, ge=1, le=64, description="API processes (uvicorn).")
    db_pool_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Wait for a pooled connection before a 503."
    )
    # Prompts kept on each instance at once: one executing and two queued behind it, so the
    # GPU never waits for our download or database write. One queued prompt is enough for runs
    # of seconds; fast samplers (turbo, LCM, small previews) finish in about 100 ms, and then
    # one slow refill (a big download, a busy database) would leave the GPU idle.
    instance_slots: int = Field(default=3, ge=1, le=16)
    max_attempts: int = Field(default=3, ge=1, le=10)
    lease_s: float = Field(default=60.0, gt=0, description="A run's lease without heartbeat.")
    heartbeat_s: float = Field(default=5.0, gt=0)
    run_timeout_s: float = Field(default=3600.0, gt=0)
    unreachable_s: float = Field(
        default=30.0, gt=0, description="An instance silent this long fails its runs over."
    )
    stall_s: float = Field(default=20.0, gt=0, description="Quiet time before re-sending work.")
    prompt_stall_s: float = Field(
        default=300.0,
        gt=0,
        description="A prompt with no event and no queue movement this long is interrupted "
        "and its run retried elsewhere; must exceed the longest silent node (a model load).",
    )
    instance_bench_after: int = Field(
        default=3,
        ge=1,
        description="Runs failing in a row on an instance with transport errors that bench it.",
    )
    instance_bench_s: float = Field(
        default=120.0, gt=0, description="How long a benched instance gets no new runs."
    )
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    # prometheus-client's own variable: processes started with it write their metrics there,
    # and /metrics merges them. Whoever starts the processes empties it (app.launcher does).
    prometheus_multiproc_dir: Path | None = Field(
        default=None, description="Shared directory of the processes' metrics (multiprocess)."
    )
    metrics_require_admin: bool = Field(
        default=False, description="/metrics only with an admin key (else unauthenticated)."
    )
    object_info_ttl_s: float = Field(default=300.0, ge=0)
    link_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs contact-sheet links; unset: random per process (links then fail "
        "across processes and restarts).",
    )
    link_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    # The event log (GET /v1/events, /v1/sweeps/{id}/events).
    event_retention_hours: float = Field(
        default=168.0, gt=0, description="Events older than this are pruned by the reconciler."
    )
    # Each sample is a transaction of the worker's, on its event loop, whose commit waits its
    # turn with every other event-writing commit (app.stores.events): once a second keeps
    # a loaded worker's runs as fast as without progress events (bench.execution).
    progress_interval_s: float = Field(
        default=1.0, ge=0, description="Least time between two recorded progress events of a run."
    )
    events_poll_s: float = Field(
        default=0.5, gt=0, le=60, description="How often an event stream reads the log."
    )
    events_ping_s: float = Field(
        default=15.0, gt=0, le=300, description="Heartbeat comment interval of event streams."
    )
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines as JSON objects or text; unset: text on a terminal, else JSON "
        "(`make run` writes text).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    webhook_retry_schedule_s: str = Field(
        default=",".join(f"{wait:g}" for wait in DEFAULT_RETRY_WAITS_S),
        description="Seconds to wait after each failed webhook attempt; once all are spent "
        "the delivery fails. The default covers about 27.6 hours.",
    )
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Let webhooks go to private, loopback and link-local addresses (tests, "
        "farms on a private network). Off: only public addresses, besides WEBHOOK_ALLOWED_HOSTS.",
    )
    webhook_allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names, `.domains` and networks (`10.20.0.0/16`) "
        "webhooks may reach even though they are private.",
    )
    webhook_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the sender looks for due deliveries."
    )
    webhook_batch: int = Field(
        default=16, ge=1, le=256, description="Deliveries one sender posts at once."
    )

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_any_case(cls, value: object) -> object:
        return (value.lower() or None) if isinstance(value, str) else value  # empty: unset

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("comfy_instances")
    @classmethod
    def _instances_parse(cls, value: str) -> str:
        parse_instances(value)
        return value

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_retry_waits(value)
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowed_hosts_parse(cls, value: str) -> str:
        parse_policy(value)
        return value

    @model_validator(mode="after")
    def _limit_above_admission(self) -> Settings:
        # Below it, uvicorn would refuse what admission would have served or queued.
        if self.api_limit_concurrency <= self.api_concurrency:
            raise ValueError(
                f"API_LIMIT_CONCURRENCY ({self.api_limit_concurrency}) must be above "
                f"API_CONCURRENCY ({self.api_concurrency})"
            )
        return self

    @model_validator(mode="after")
    def _lease_fits(self) -> Settings:
        # Two heartbeats per lease: one slow database write must not cost a run its lease.
        if self.lease_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"LEASE_S ({self.lease_s}) must be at least twice HEARTBEAT_S ({self.heartbeat_s})"
            )
        return self

    @property
    def visibility_timeout_s(self) -> float:
        """How long Redis lets a message go unacknowledged before delivering it again.

        A dead worker's runs are recovered by the database, not by this: its lease lapses
        after LEASE_S without heartbeat and the reconciler sends a resume within
        RECONCILE_INTERVAL_S. Redis cannot tell a dead consumer from a busy one, so a message
        redelivered while its task still runs would set a second worker following the same
        prompt; hence this exceeds the longest a task may hold its message (a run's timeout
        and what follows it), and only ever delivers a hint the database then finds stale.
        """
        return self.run_timeout_s + VISIBILITY_MARGIN_S

    @property
    def webhook_retry_waits(self) -> tuple[float, ...]:
        return parse_retry_waits(self.webhook_retry_schedule_s)

    @property
    def webhook_policy(self) -> TargetPolicy:
        return parse_policy(
            self.webhook_allowed_hosts, allow_private=self.webhook_allow_private_networks
        )

    @property
    def instances(self) -> tuple[InstanceConfig, ...]:
        return parse_instances(self.comfy_instances)

    @property
    def worker_concurrency(self) -> int:
        """Worker processes the pool needs: one keeping each slot (following its prompt, then
        recording it), and one more per instance for the other messages (a sweep to start or
        finalize, a run to resume) so they never wait for a slot's task to end."""
        return max(1, len(self.instances)) * (self.instance_slots + 1)
