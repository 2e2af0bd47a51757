"""HTTP routes of the instance pool, for admins: list it, drain and undrain an instance."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.deps import CallerDep, CeleryDep, SessionDep, SettingsDep
from app.api.errors import Forbidden, NotFound, responses
from app.api.schemas.instances import InstanceRead
from app.metrics.exposition import runs_finished_by_instance
from app.services import pool
from app.services.keys import Caller
from app.settings import InstanceConfig, Settings


def _admin(caller: CallerDep) -> Caller:
    # The pool is shared by every team: only an admin may see its URLs or take one out.
    if not caller.is_admin:
        raise Forbidden("only an admin key may see or change the instance pool")
    return caller


router = APIRouter(
    prefix="/instances",
    tags=["instances"],
    dependencies=[Depends(_admin)],
    responses=responses(Forbidden),
)


def _configured(instance_id: str, settings: SettingsDep) -> InstanceConfig:
    config = pool.find_configured(settings.instances, instance_id)
    if config is None:
        raise NotFound(f"no configured instance with id {instance_id!r}; see GET /v1/instances")
    return config


ConfiguredDep = Annotated[InstanceConfig, Depends(_configured)]


@router.get("", response_model=list[InstanceRead], summary="The instance pool")
def list_instances(session: SessionDep, settings: SettingsDep) -> list[InstanceRead]:
    """Every configured instance with its tags, health, drain and bench state, and the
    prompts of ours it holds now."""
    return _read(session, settings)


@router.post(
    "/{instance_id}/drain",
    response_model=InstanceRead,
    responses=responses(NotFound),
    summary="Drain an instance",
)
def drain_instance(
    config: ConfiguredDep, session: SessionDep, settings: SettingsDep, celery: CeleryDep
) -> InstanceRead:
    """Prompts already there finish; no new run is started there until it is undrained."""
    pool.set_drained(session, config, True, celery=celery, slots=settings.instance_slots)
    return _one(session, settings, config)


@router.post(
    "/{instance_id}/undrain",
    response_model=InstanceRead,
    responses=responses(NotFound),
    summary="Undrain an instance",
)
def undrain_instance(
    config: ConfiguredDep, session: SessionDep, settings: SettingsDep, celery: CeleryDep
) -> InstanceRead:
    """The instance takes new runs again."""
    pool.set_drained(session, config, False, celery=celery, slots=settings.instance_slots)
    return _one(session, settings, config)


def _read(session: SessionDep, settings: Settings) -> list[InstanceRead]:
    states = pool.list_pool(session, settings.instances)
    # Runs done come from the workers' counters, not a count over the runs table.
    finished = runs_finished_by_instance(settings.prometheus_multiproc_dir)
    return [_shown(state, settings.instance_slots, finished) for state in states]


def _shown(
    state: pool.InstanceState, slots: int, finished: dict[tuple[str, str], int] | None
) -> InstanceRead:
    done: dict[str, int | None] = {"runs_succeeded": None, "runs_failed": None}
    if finished is not None:
        done["runs_succeeded"] = finished.get((state.id, "succeeded"), 0)
        failed = finished.get((state.id, "failed"), 0) + finished.get((state.id, "retried"), 0)
        done["runs_failed"] = failed
    return InstanceRead.model_validate({**asdict(state), "slots": slots, **done})


def _one(session: SessionDep, settings: Settings, config: InstanceConfig) -> InstanceRead:
    return next(i for i in _read(session, settings) if i.url == config.url)
