"""The caller's team: its weight, caps and current usage."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from app.api.deps import SessionDep, TeamDep
from app.api.schemas.teams import TeamRead
from app.services import quotas

router = APIRouter(prefix="/teams", tags=["teams"])


@router.get("/me", response_model=TeamRead, summary="Your team's share, caps and usage")
def read_my_team(session: SessionDep, team_id: TeamDep) -> TeamRead:
    return TeamRead(**asdict(quotas.standing(session, team_id)))
