"""Every Celery task, thin and explicitly named: each takes ids, delegates, and is safe to
receive twice (delivery is at least once; the database decides what actually happens)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from celery import Celery

from app.queue import (
    CANCEL_PROMPTS,
    FINALIZE_SWEEP,
    RESUME_RUN,
    START_SWEEP,
    WORK,
    marks_redeliveries,
)
from workers import cancelling, dispatching, execution, finalization
from workers.runtime import current_runtime


def register_tasks(app: Celery) -> None:
    flags_redeliveries = marks_redeliveries(str(app.conf.broker_url))

    @app.task(name=START_SWEEP)
    def start_sweep(sweep_id: str) -> None:
        dispatching.start_sweep(current_runtime(), UUID(sweep_id))

    @app.task(name=WORK, bind=True)
    def work(
        self: Any,
        freed_run: str | None = None,
        freed_attempt: int | None = None,
        freed_instance: str | None = None,
    ) -> None:
        """Fill a free instance slot (the one a finished prompt just `freed`, or any): resume
        the run this message already holds (it was redelivered after its worker died), else
        claim the best queued run."""
        rt, task_id = current_runtime(), str(self.request.id)
        freed = None
        if freed_run is not None and freed_attempt is not None and freed_instance is not None:
            freed = dispatching.FreedSlot(UUID(freed_run), freed_attempt, freed_instance)
        # A first delivery holds no run yet: only a message delivered again is looked up.
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
        maybe_held = redelivered or not flags_redeliveries
        if (work := dispatching.take_work(rt, task_id, freed, maybe_held)) is not None:
            execution.execute(rt, work.claim, task_id, resumed=work.resumed)

    @app.task(name=RESUME_RUN, bind=True)
    def resume_run(self: Any, run_id: str) -> None:
        execution.resume(current_runtime(), UUID(run_id), str(self.request.id))

    @app.task(name=FINALIZE_SWEEP)
    def finalize_sweep(sweep_id: str) -> None:
        finalization.finalize(current_runtime(), UUID(sweep_id))

    @app.task(name=CANCEL_PROMPTS)
    def cancel_prompts(sweep_id: str) -> None:
        rt = current_runtime()
        cancelling.withdraw_prompts(rt, UUID(sweep_id))
        finalization.finalize_cancelled(rt, UUID(sweep_id))
