"""HTTP routes of a team's wildcard lists: upload (replace), list, read, delete.

A list is uploaded as `text/plain`, the format of the dynamic-prompts `.txt` files, so an
existing file is sent as is: `curl --data-binary @animals.txt`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Response, status
from fastapi.exceptions import RequestValidationError

from app.api.deps import SessionDep, TeamDep
from app.api.errors import NotFound, UnsupportedMediaType, responses
from app.api.schemas.common import Page
from app.api.schemas.wildcards import WildcardRead, WildcardSummary
from app.db.models import WildcardList
from app.domain.wildcard_lists import (
    MAX_ENTRIES,
    NAME_PATTERN,
    WildcardListError,
    is_list_name,
    parse_wildcard_list,
)
from app.stores import wildcards as wildcard_store

router = APIRouter(prefix="/wildcards", tags=["wildcards"])

ListName = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        description="Lowercase letters, digits, `_` and `-`, at most 64; no `__` inside.",
    ),
]
ListText = Annotated[
    str,
    Body(
        media_type="text/plain",
        description=(
            f"One entry per line; blank lines and lines starting with # are skipped; "
            f"at most {MAX_ENTRIES} entries."
        ),
    ),
]


@router.put(
    "/{name}",
    response_model=WildcardSummary,
    responses={
        201: {"model": WildcardSummary, "description": "Created."},
        **responses(UnsupportedMediaType),
    },
    summary="Upload or replace a wildcard list",
)
def put_wildcard(
    name: ListName,
    text: ListText,
    response: Response,
    session: SessionDep,
    team_id: TeamDep,
    content_type: Annotated[str, Header()] = "",
) -> WildcardSummary:
    """Sweeps copy the entries they use when submitted, so replacing a list changes only
    sweeps submitted afterwards."""
    if content_type.split(";")[0].strip().lower() != "text/plain":
        raise UnsupportedMediaType("send the list as text/plain, one entry per line")
    _check_name(name)
    try:
        entries = parse_wildcard_list(text)
    except WildcardListError as error:
        problem = {"loc": ("body",), "type": "invalid_wildcard_list", "msg": str(error)}
        raise RequestValidationError([{**problem, "input": None}]) from None
    stored, created = wildcard_store.put_list(session, team_id, name, entries)
    session.commit()
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _summary(stored)


@router.get("", response_model=Page[WildcardSummary], summary="The team's wildcard lists")
def list_wildcards(session: SessionDep, team_id: TeamDep) -> Page[WildcardSummary]:
    items = [_summary(stored) for stored in wildcard_store.list_lists(session, team_id)]
    return Page(items=items, total=len(items), offset=0, limit=max(len(items), 1))


@router.get(
    "/{name}",
    response_model=WildcardRead,
    responses=responses(NotFound),
    summary="A wildcard list's entries",
)
def read_wildcard(name: ListName, session: SessionDep, team_id: TeamDep) -> WildcardRead:
    stored = wildcard_store.get_list(session, team_id, name)
    if stored is None:
        raise NotFound(f"no wildcard list named {name!r}")
    return WildcardRead(**_summary(stored).model_dump(), entries=list(stored.entries))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(NotFound),
    summary="Delete a wildcard list",
)
def delete_wildcard(name: ListName, session: SessionDep, team_id: TeamDep) -> None:
    """Sweeps already submitted keep the entries they copied."""
    if not wildcard_store.delete_list(session, team_id, name):
        raise NotFound(f"no wildcard list named {name!r}")
    session.commit()


def _check_name(name: str) -> None:
    if not is_list_name(name):
        msg = "a list name may not contain `__`: `__a__b__` in a prompt would read as the list a"
        problem = {"loc": ("path", "name"), "type": "string_pattern_mismatch", "msg": msg}
        raise RequestValidationError([{**problem, "input": name}])


def _summary(stored: WildcardList) -> WildcardSummary:
    return WildcardSummary(
        name=stored.name, count=len(stored.entries), updated_at=stored.updated_at
    )
