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
from workers import cancelling, dispatching, finalization, slot_keeping
from workers.runtime import current_runtime


def register_tasks(app: Celery) -> None:
    flags_redeliveries = marks_redeliveries(str(app.conf.broker_url))

    @app.task(name=START_SWEEP)
    def start_sweep(sweep_id: str) -> None:
        dispatching.start_sweep(current_runtime(), UUID(sweep_id))

    def maybe_held(request: Any) -> bool:
        # A first delivery holds no run yet: only a message delivered again is looked up.
        redelivered = bool((request.delivery_info or {}).get("redelivered"))
        return redelivered or not flags_redeliveries

    @app.task(name=WORK, bind=True)
    def work(self: Any, *_freed_slot: object) -> None:
        """Fill a free instance slot and keep it filled: resume the run this message already
        holds (it was redelivered after its worker died), else claim the best queued run;
        then claim the next ones as each is recorded. A message sent before tasks kept their
        slots names the slot a prompt freed; during a rolling upgrade it is taken as any."""
        slot_keeping.fill_slot(current_runtime(), str(self.request.id), maybe_held(self.request))

    @app.task(name=RESUME_RUN, bind=True)
    def resume_run(self: Any, run_id: str) -> None:
        rt, task_id = current_runtime(), str(self.request.id)
        slot_keeping.resume_then_fill(rt, UUID(run_id), task_id, maybe_held(self.request))

    @app.task(name=FINALIZE_SWEEP)
    def finalize_sweep(sweep_id: str) -> None:
        finalization.finalize(current_runtime(), UUID(sweep_id))

    @app.task(name=CANCEL_PROMPTS)
    def cancel_prompts(sweep_id: str) -> None:
        rt = current_runtime()
        cancelling.withdraw_prompts(rt, UUID(sweep_id))
        finalization.finalize_cancelled(rt, UUID(sweep_id))
